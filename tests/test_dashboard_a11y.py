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


# --- without a browser: the shared helpers of dashboard/ui.py and the app shell -------------


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of "#RRGGBB"."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_scheme_colours_stay_apart_in_greyscale_and_the_stabilisation_colour_shows():
    """By hand (WCAG 2: channel c/255, linear ((c + 0.055) / 1.055)^2.4, L = 0.2126 R +
    0.7152 G + 0.0722 B):
    5 steps #F5C000: R 0.9608 -> 0.9131, G 0.7529 -> 0.5271, B 0: L = 0.194 + 0.377 = 0.571;
    7 steps #008A64: G 0.5412 -> 0.2542, B 0.3922 -> 0.1275: L = 0.182 + 0.009 = 0.191;
    10 steps #003A66: G 0.2275 -> 0.0423, B 0.4 -> 0.1329: L = 0.030 + 0.010 = 0.040.
    Contrast (L1 + 0.05) / (L2 + 0.05): 5/7 = 0.621 / 0.241 = 2.58, 7/10 = 0.241 / 0.090 = 2.68
    (the old orange #E69F00, L 0.416, and sky blue #56B4E9, L 0.405: 0.466 / 0.455 = 1.02, one
    grey). Stabilisation #9A7D00: R 0.6039 -> 0.3231,
    G 0.4902 -> 0.2051, L = 0.0687 + 0.1467 = 0.215; on white 1.05 / 0.265 = 3.96 >= 3 (the
    old yellow #F0E442: 1.32)."""
    from dashboard.ui import EXTRA_COLOURS, SCHEME_COLOURS

    stabilisation = EXTRA_COLOURS[2]  # dashboard/pages/fees.py's KIND_COLOURS

    shown = [round(_luminance(SCHEME_COLOURS[s]), 3) for s in ("5", "7", "10")]
    assert shown == [0.571, 0.191, 0.040]
    assert round(_contrast(SCHEME_COLOURS["5"], SCHEME_COLOURS["7"]), 2) == 2.58
    assert round(_contrast(SCHEME_COLOURS["7"], SCHEME_COLOURS["10"]), 2) == 2.68
    assert round(_contrast(stabilisation, "#FFFFFF"), 2) == 3.96
    assert round(_contrast("#E69F00", "#56B4E9"), 2) == 1.02


def test_markdown_headings_go_one_level_down_outside_code():
    from dashboard.ui import nested_headings

    text = "# Methodology\n\nIntro\n```\n# a comment\n```\n## Sources\n"
    assert nested_headings(text) == "## Methodology\n\nIntro\n```\n# a comment\n```\n### Sources\n"


@pytest.fixture
def small_app(cli, db, tmp_path):
    """The smoke test's warehouse: March 2025, patients initiated 1 (5 steps), 0 (7 steps),
    2 (10 steps) (tests/test_dashboard_smoke.py)."""
    from dashboard.app import create_app
    from tests.conftest import CANONICAL_HEADER, write_delimited

    rows = [
        ["P1", "PH1", "03/03/2025", "5521950", "1", "23,24"],
        ["P2", "PH1", "04/03/2025", "5521976", "1", "23,24"],
        ["P3", "PH2", "05/03/2025", "5521976", "1", "23,24"],
        ["P1", "PH1", "03/03/2025", "5521984", "1", "15,71"],
    ]
    export = write_delimited(tmp_path / "a.csv", CANONICAL_HEADER, rows)
    assert cli("--db", db, "load", export)[0] == 0
    return create_app(db)


def _components(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if hasattr(child, "to_plotly_json"):
            yield from _components(child)


def _state_page(app, **params):
    import importlib

    import dash

    entry = next(p for p in dash.page_registry.values() if p["path"] == "/")
    state = importlib.import_module(entry["module"])
    with app.server.test_request_context():
        return state.layout(lang=params.pop("lang", "fr"), month="2025-03", **params)


@pytest.mark.parametrize(
    "lang,ticks",
    [
        ("fr", ["avr. 23", "juil. 23", "oct. 23", "janv. 24", "avr. 24", "juil. 24", "oct. 24",
                "janv. 25"]),
        ("en", ["Apr 23", "Jul 23", "Oct 23", "Jan 24", "Apr 24", "Jul 24", "Oct 24", "Jan 25"]),
    ],
)  # fmt: skip
def test_the_state_chart_is_captioned_titled_and_ticked_in_words(small_app, lang, ticks):
    """The chart runs from the pilot's start (programme_start, February 2023) to March 2025,
    ticked every 3 months (dtick M3) on the quarters' first months: April 2023 to January
    2025, 8 ticks, in words (Babel's short month, "avr. 23" / "Apr 23", not "2023-04"). The y
    axis is titled and never shortens 12 000 to "12k"; the toolbar keeps 2 buttons; the chart
    has its caption from the catalogue."""
    from dash import dcc, html

    from etl.base.i18n import t

    page = _state_page(small_app, lang=lang)
    (figure,) = [c for c in _components(page) if isinstance(c, html.Figure)]
    graph, caption = figure.children
    assert isinstance(graph, dcc.Graph) and graph.id == "state-trend"
    assert caption.children == t("a11y_chart_state_trend", lang)
    assert graph.config["modeBarButtons"] == [["toImage", "resetScale2d"]]
    layout = graph.figure.layout
    assert list(layout.xaxis.ticktext) == ticks
    assert list(layout.xaxis.tickvals)[:2] == ["2023-04-01", "2023-07-01"]
    assert layout.yaxis.title.text == t("a11y_axis_patients_initiated", lang)
    assert layout.yaxis.exponentformat == "none" and layout.yaxis.separatethousands
    assert {tr.marker.line.color for tr in graph.figure.data if tr.type == "bar"} == {"#333333"}


@pytest.mark.parametrize("view", ["analyst", "publication"])
def test_a_masked_value_is_marked_on_the_bars(small_app, view):
    """March 2025 by hand: 1 (5 steps), 0 (7), 2 (10). The publication view masks 1 and 2 as
    "<5" (SPEC §9.1) and draws no bar for them: one mark on the month, at the height of what is
    drawn (0), naming both masked parts. The analyst view draws every bar, with no mark."""
    page = _state_page(small_app, lang="en", view=view)
    (graph,) = [c for c in _components(page) if getattr(c, "id", None) == "state-trend"]
    marks = [tr for tr in graph.figure.data if tr.type == "scatter"]
    if view == "analyst":
        assert marks == []
        return
    (mark,) = marks
    assert mark.name == "Masked value (<5 or x)"
    assert list(mark.x) == ["2025-03-01"] and list(mark.y) == [0]
    assert list(mark.customdata) == ["5 steps: <5<br>10 steps: <5"]


def test_the_page_is_served_in_the_language_of_its_url(small_app):
    client = small_app.server.test_client()
    for query, lang in (("?lang=nl", "nl"), ("?lang=en", "en"), ("", "fr"), ("?lang=xx", "fr")):
        page = client.get("/" + query).get_data(as_text=True)
        assert f'<html lang="{lang}">' in page, query


def test_the_language_links_keep_the_page_and_its_filters(small_app):
    from dashboard.app import language_links

    with small_app.server.test_request_context():
        links = language_links("nl", "?lang=nl&month=2025-03&view=publication", "/regions")
    shown = [(span.lang, span.children.href, span.children.className) for span in links]
    assert shown == [
        ("fr", "/regions?lang=fr&month=2025-03&view=publication", None),
        ("nl", "/regions?lang=nl&month=2025-03&view=publication", "active"),
        ("en", "/regions?lang=en&month=2025-03&view=publication", None),
    ]


@pytest.mark.parametrize("horizontal", [False, True])
def test_the_mark_sits_at_the_end_of_what_is_drawn(horizontal):
    """Two categories stacked from two schemes: A = 3 (5 steps) + "x" (7 steps), B = "<5" +
    2. By hand: A's mark at 3 naming "7 steps: x", B's at 2 naming "5 steps: <5"; a category
    with nothing masked gets none. Horizontal bars: the same, axes swapped."""
    import plotly.graph_objects as go

    from dashboard.ui import mark_suppressed

    fig = go.Figure()
    series = {"5 steps": [3, "<5", 1], "7 steps": ["x", 2, 0]}
    mark_suppressed(fig, ["A", "B", "C"], series, "en", horizontal=horizontal)
    (mark,) = fig.data
    categories, ends = (mark.y, mark.x) if horizontal else (mark.x, mark.y)
    assert list(categories) == ["A", "B"] and list(ends) == [3, 2]
    assert list(mark.customdata) == ["7 steps: x", "5 steps: <5"]
