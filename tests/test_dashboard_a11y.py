"""Accessibility and phones (issue 18, items 6 and 7), in headless Chromium on the shared server.

axe-core (the copy shipped in the `selenium-axe-python` package, injected through Selenium) runs
on every page in every language, in both views where a page shows suppressed figures: no
critical or serious violation. The page's language is set on <html> and each page has one
level-1 heading. At a phone's width (390 x 844) no element sticks out of the viewport unless it
is inside a container that scrolls sideways, and the language links can be seen and clicked.
One browser session visits the pages in a loop (the shared `browser` fixture).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import open_page

LANGS = ("fr", "nl", "en")
# Pages that show no counts (nothing to suppress): the publication view is the same page.
SAME_IN_BOTH_VIEWS = ("/data", "/methodology")
BLOCKING = ("critical", "serious")


def axe_script() -> str:
    """axe-core's browser script, as shipped by the selenium-axe-python package."""
    import selenium_axe_python

    return (Path(selenium_axe_python.__file__).parent / "axe-core" / "axe.min.js").read_text(
        encoding="utf-8"
    )


def page_paths(driver, url: str) -> list[str]:
    """The paths of the navigation's links (every page the app registers)."""
    from urllib.parse import urlparse

    from selenium.webdriver.common.by import By

    open_page(driver, url + "/?lang=en", "app-nav")
    links = driver.find_elements(By.CSS_SELECTOR, "#app-nav a")
    paths = [urlparse(a.get_attribute("href")).path for a in links]
    assert "/" in paths and "/data" in paths, paths
    return paths


def open_and_settle(driver, url: str) -> None:
    """Open `url`, wait for the page container and then for Dash and Plotly to be idle."""
    import time

    from selenium.webdriver.support.ui import WebDriverWait

    open_page(driver, url, "_pages_content", timeout=40)
    WebDriverWait(driver, 40).until(
        lambda d: d.execute_script(
            "return !document.querySelector('[data-dash-is-loading=true]') && "
            "[...document.querySelectorAll('.dash-graph')].every(g => g.querySelector('.main-svg'))"
        )
    )
    # ag-grid draws a grid when it first comes into view: bring each one into view.
    driver.execute_script(
        "document.querySelectorAll('.ag-root-wrapper').forEach(g => g.scrollIntoView());"
        "window.scrollTo(0, 0);"
    )
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return !document.querySelector('.ag-delay-render')")
    )
    time.sleep(0.3)  # the last renders of ag-grid and Plotly


def axe_violations(driver, script: str) -> list[dict]:
    """The critical and serious violations axe-core finds on the current page."""
    driver.execute_script(script)
    driver.set_script_timeout(60)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', impact: 'critical',"
        " help: String(e), nodes: []}]));"
    )
    return [v for v in result if v.get("impact") in BLOCKING]


def describe(violations: list[dict]) -> list[str]:
    """One line per violation: rule, impact, help, the first few elements."""
    lines = []
    for v in violations:
        targets = [" ".join(map(str, n.get("target", []))) for n in v.get("nodes", [])[:4]]
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} -> {targets}")
    return lines


def visits(paths: list[str], langs=LANGS):
    """(path, lang, view) of every page in every language, both views where they differ."""
    for lang in langs:
        for path in paths:
            yield path, lang, "analyst"
            if path not in SAME_IN_BOTH_VIEWS:
                yield path, lang, "publication"


@pytest.mark.timeout(600)  # 12 pages loaded and checked per language, on a shared machine
@pytest.mark.parametrize("lang", LANGS)
def test_every_page_passes_axe(served, browser, lang):
    script = axe_script()
    browser.set_window_size(1366, 900)
    found = {}
    for path, _, view in visits(page_paths(browser, served.url), [lang]):
        search = f"?lang={lang}" + ("&view=publication" if view == "publication" else "")
        open_and_settle(browser, served.url + path + search)
        facts = browser.execute_script(
            "return [document.documentElement.lang, document.querySelectorAll('h1').length]"
        )
        # The reader's language on <html> (screen readers pick their voice from it) and one
        # level-1 heading, the page's title.
        assert facts == [lang, 1], (path, lang, view, facts)
        violations = axe_violations(browser, script)
        if violations:
            found[(path, lang, view)] = describe(violations)
    assert not found, "\n".join(f"{k}: {line}" for k, lines in found.items() for line in lines)


# --- phones ---------------------------------------------------------------------------------

# Every visible element whose box leaves the viewport sideways and that no ancestor (below
# <body>) lets the reader scroll to: what a phone's reader cannot reach.
OVERFLOWING = """
const width = document.documentElement.clientWidth;
const scrolls = (el) => {
  for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
    const s = getComputedStyle(a);
    if (['auto', 'scroll'].includes(s.overflowX) && a.scrollWidth > a.clientWidth - 1) {
      const box = a.getBoundingClientRect();
      if (box.left >= -1 && box.right <= width + 1) return true;
    }
  }
  return false;
};
const out = [];
for (const el of document.body.querySelectorAll('*')) {
  const box = el.getBoundingClientRect();
  // (nothing to see, or put far off-screen on purpose, like Plotly's text-measuring node)
  if (box.width === 0 || box.height === 0 || box.right <= 0) continue;
  const s = getComputedStyle(el);
  if (s.visibility === 'hidden' || s.display === 'none') continue;
  if ((box.right > width + 1 || box.left < -1) && !scrolls(el)) {
    out.push((el.id ? '#' + el.id : el.tagName.toLowerCase()) + '.' +
             String(el.className && el.className.baseVal !== undefined
                    ? el.className.baseVal : el.className).split(' ')[0] +
             ' [' + Math.round(box.left) + ', ' + Math.round(box.right) + ']');
  }
}
return out;
"""


# Sections, tables, charts and grids whose boxes overlap (neither inside the other).
OVERLAPPING = """
const items = [...document.querySelectorAll(
  '.app-main table, .app-main .dash-graph, .app-main .ag-root-wrapper, .app-main .card')]
  .filter(el => el.getBoundingClientRect().width > 0);
const out = [];
for (let i = 0; i < items.length; i++) {
  for (let j = i + 1; j < items.length; j++) {
    const a = items[i], b = items[j];
    if (a.contains(b) || b.contains(a)) continue;
    const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
    const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
    const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
    if (w > 1 && h > 1) out.push((a.id || a.className) + ' / ' + (b.id || b.className));
  }
}
return out;
"""


@pytest.mark.timeout(600)
def test_phone_width_every_control_can_be_reached(served, browser):
    from selenium.webdriver.common.by import By

    paths = page_paths(browser, served.url)
    browser.set_window_size(390, 844)
    try:
        problems = {}
        for path in paths:
            open_and_settle(browser, served.url + path + "?lang=nl")
            width = browser.execute_script("return document.documentElement.clientWidth")
            assert width <= 390, width
            out = browser.execute_script(OVERFLOWING)
            if out:
                problems[path] = out[:8]
            # Blocks shown side by side on a wide screen (a table beside a chart) stack up.
            overlaps = browser.execute_script(OVERLAPPING)
            if overlaps:
                problems[path + " overlaps"] = overlaps[:8]
            # The language links: on screen and the top element where they are (clickable).
            for link in browser.find_elements(By.CSS_SELECTOR, "#app-language a"):
                assert link.is_displayed(), (path, link.text)
                hit = browser.execute_script(
                    "const b = arguments[0].getBoundingClientRect();"
                    "const e = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);"
                    "return b.left >= 0 && b.right <= document.documentElement.clientWidth"
                    " && (e === arguments[0] || arguments[0].contains(e));",
                    link,
                )
                assert hit, (path, link.text)
        assert not problems, problems
        # Clicking one switches the page's language.
        link = browser.find_element(By.ID, "app-language-fr")
        link.click()
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(browser, 20).until(
            lambda d: d.execute_script("return document.documentElement.lang") == "fr"
        )
        assert "lang=fr" in browser.current_url
    finally:
        browser.set_window_size(1366, 900)


@pytest.mark.parametrize("lang", LANGS)
def test_the_state_table_scrolls_to_its_last_column_on_a_phone(served, browser, lang):
    """The state of play's table keeps its 10-step and total columns: on a phone its container
    scrolls sideways to them."""
    browser.set_window_size(390, 844)
    try:
        open_and_settle(browser, served.url + f"/?lang={lang}")
        reach = browser.execute_script(
            "const t = document.querySelector('#state-table');"
            "let box = t;"
            "while (box && getComputedStyle(box).overflowX !== 'auto') box = box.parentElement;"
            "box.scrollLeft = box.scrollWidth;"
            "const last = t.querySelector('thead th:last-child').getBoundingClientRect();"
            "return [box.scrollWidth > box.clientWidth, last.right <= window.innerWidth + 1];"
        )
        assert reach == [True, True]
    finally:
        browser.set_window_size(1366, 900)
