"""SPEC §15 on the dashboard: the state of play opens on the latest month that is not
provisional and shows the provisional ones as nowcast bands; the actuarial page (triangle,
completion factors, backtest, budget). Rendered through the app's own server on a tiny
warehouse, figures worked out by hand; then in headless Chromium on the generated warehouse.

The tiny warehouse: one initiation of scheme 5 per patient (a programme start, 23.24 EUR), each
line with a billing month (known from the month's last day):

| delivery month | starts | billed in (month of 2025)   | C(m, 0), C(m, 1), C(m, 2) ... |
| 2025-01        | 4      | 01, 01, 02, 03              | 2, 3, 4, 4, 4                 |
| 2025-02        | 4      | 02, 03, 03, 04              | 1, 3, 4, 4                    |
| 2025-03        | 4      | 03, 03, 03, 04              | 3, 4, 4                       |
| 2025-04        | 3      | 04, 04, 05                  | 2, 3                          |
| 2025-05        | 3      | 05, 05, 05 (one on 05-31)   | 3                             |

The latest delivery is 2025-05-31, the as-of date of the state of play; the nowcast's date is
the end of the last billing month, 2025-05-31 too (vintage May). With provisional_days 60:
January is final from 2025-04-01, February from 04-29, March from 05-30 (<= 05-31): final;
April (until 06-29) and May are provisional. So the page opens on March 2025.

Nowcast (etl/nowcast.py's method; history: January-March, finals 4, 4, 4, sum 12):
- lag 0 (May): share (2 + 1 + 3) / 12 = 0.5, completion factor 2; May 3 / 0.5 = 6.
  Log ratios ln(4/2) = 0.693147, ln(4/1) = 1.386294, ln(4/3) = 0.287682: mean 0.789041,
  sd sqrt((0.009196 + 0.356711 + 0.251361) / 2) = 0.555548, x sqrt(1 + 1/3) = 0.641492.
  95 %: t(0.975, 2) = 4.303 -> x exp(+-2.760341) = x/÷ 15.8052: 0.3796 and 94.83 (0.4, 94.8);
  80 %: t(0.90, 2) = 1.886 -> x/÷ exp(1.209854) = 3.35291: 1.7895 and 20.12 (1.8, 20.1).
  Card: "provisional — expected 6 (0–95)".
- lag 1 (April): share (3 + 3 + 4) / 12 = 0.8333 (83.3 %), factor 1.2; April 3 / (10/12) = 3.6.
  Log ratios ln(4/3), ln(4/3), 0: mean 0.191788, sd 0.166095, x 1.154701 = 0.191790.
  95 %: 4.303 x 0.191790 = 0.825272, exp 2.28253: 1.577 and 8.217 (1.6, 8.2);
  80 %: 1.886 x 0.191790 = 0.361716, exp 1.43580: 2.507 and 5.169 (2.5, 5.2).
  Card: "provisional — expected 4 (2–8)".
Scheme 5 holds every start: its nowcast is the total's; schemes 7 and 10 have no history
(no factor): "provisional" alone.

Trend chart: the hatched remainder of the total is nowcast - known: April 3.6 - 3 = 0.6, May
6 - 3 = 3; the 95 % error bars of May reach 94.8 - 6 = 88.8 up and 6 - 0.4 = 5.6 down.

Triangle (cells: known at lag k minus at lag k - 1): January 2, 1, 1, 0, 0; February 1, 2, 1,
0; March 3, 1, 0; April 2, 1; May 3. Shown up to lag 3: the last lag that added anything is 2. Fees: the same times 23.24 (January lag 0: 46.48).

Backtest (as of 2025-05-31, final months January-March, each nowcast at the end of month +
lag from the months final then): lag 0 — at the end of January, February, March no month was
final yet: 0 months. Lag 1 — January (end of February) and February (end of March): none final
then; March at the end of April, from January and February as known then (4 and 4; at lag 1:
3 and 3): share 6/8 = 0.75, nowcast 4 / 0.75 = 5.33 against 4 (the figure known, 4, was
already right): error known 0.0 %, nowcast 33.3 %, the (zero-width, both log ratios equal)
intervals miss 4: coverage 0 %: "nowcast not closer". Lag 2 — February at the end of April
and March at the end of May: share 1, nowcast = known = final: 2 months, errors 0.0 % and
0.0 %, coverage 100 %, "nowcast not closer" (equal).

Budget 2025 (as of 2025-05-31): fees known January-March 3 x 4 x 23.24 = 278.88; nowcasts
April 3.6 x 23.24 = 83.664, May 6 x 23.24 = 139.44; run rate (mean of January-March) 92.96,
June-December 7 x 92.96 = 650.72. Year-end: 278.88 + 83.664 + 139.44 + 650.72 = 1152.70.
Interval: no final month has 3 final months before it (no run-rate spread); the nowcasts'
variances ((upper95 - lower95) / (2 x 1.96))^2: April 83.664 x (2.28253 - 1/2.28253) / 3.92 =
39.36 (var 1549.3), May 139.44 x (15.8052 - 1/15.8052) / 3.92 = 559.97 (var 313,566):
sd 561.35; 95 %: +-1100.2 -> 52.5 to 2252.9; 80 %: +-719.4 -> 433.3 to 1872.1.
Billed per billing month: January 2 lines, February 2, March 6, April 4, May 4: cumulative
46.48, 92.96, 232.40, 325.36, 418.32. Delivery months cumulative (known + nowcast): 92.96,
185.92, 278.88, 362.54, 501.98.

Publication view (threshold 5): every count is from 1 to 4, masked: the nowcast goes with it
(etl.nowcast.disclose_nowcast), so no band and "provisional" alone; the actuarial page shows
the nowcast table so masked ("<5", the fees beside them hidden) and the backtest, not the
triangle, the completion factors or the budget.
"""

from __future__ import annotations

import json

import pytest
from plotly.utils import PlotlyJSONEncoder

from tests.browser import console_errors, open_page, text_of, wait_for
from tests.sqlcase import INIT5, build, cli_json, line
from tests.test_dashboard_bzra import _component, _rendered

FEES = "fees_estimated_eur"
BILLING = {
    "2025-01": ["01", "01", "02", "03"],
    "2025-02": ["02", "03", "03", "04"],
    "2025-03": ["03", "03", "03", "04"],
    "2025-04": ["04", "04", "05"],
    "2025-05": ["05", "05", "05"],
}
TITLES = {
    "fr": ("État des lieux mensuel", {"2025-03": "mars 2025", "2025-05": "mai 2025"}),
    "nl": ("Maandelijkse stand van zaken", {"2025-03": "maart 2025", "2025-05": "mei 2025"}),
    "en": ("Monthly state of play", {"2025-03": "March 2025", "2025-05": "May 2025"}),
}


def tiny_lines() -> list[dict]:
    lines = []
    for month, bills in BILLING.items():
        for i, billed in enumerate(bills):
            day = "31" if month == "2025-05" and i == 0 else f"{10 + i:02d}"
            lines.append(
                line(f"P{month}-{i}", f"{month}-{day}", INIT5, billing_month=f"2025-{billed}")
            )
    return lines


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The app on the tiny warehouse, its actuarial review computed (waited for)."""
    from dashboard import actuarial
    from dashboard.app import create_app
    from etl.base.warehouse import connect

    lines = tiny_lines()
    db = build(tmp_path_factory.mktemp("actuarial"), lines)
    con = connect(db)
    try:
        for i, row in enumerate(lines):
            con.execute(
                "update billing_lines set billing_month = ? where fingerprint = ?",
                [row["billing_month"], i],
            )
    finally:
        con.close()
    app = create_app(db)
    actuarial.review(app.server.config["BENZO_WAREHOUSE"], None)
    app.db = db
    return app


def _children(node) -> str:
    return node["props"]["children"]


def _table(page: dict, table_id: str) -> list[list[str]]:
    """A rendered html.Table's body as text."""
    table = _component(page, table_id)
    assert table is not None, table_id
    _, body = _children(table)
    rows = _children(body)
    return [[_children(cell) for cell in _children(row)] for row in rows]


def _trace(figure: dict, name: str) -> dict | None:
    """The trace named `name` (a long name is broken into legend lines by <br>)."""
    return next(
        (tr for tr in figure["data"] if (tr.get("name") or "").replace("<br>", " ") == name), None
    )


# --- the state of play -------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "nl", "en"])
def test_opens_on_the_latest_month_not_provisional(tiny, lang):
    """No month in the URL: March 2025 (final from 2025-05-30), not April or May."""
    page = _rendered(tiny, "/", lang=lang)
    words, months = TITLES[lang]
    assert _children(_component(page, "state-title")) == f"{words} — {months['2025-03']}"
    assert _component(page, "state-month-picker")["props"]["value"] == "2025-03"
    assert _component(page, "state-provisional") is None
    assert _component(page, "state-card-total-expected") is None
    # The provisional months stay reachable.
    options = [o["value"] for o in _component(page, "state-month-picker")["props"]["options"]]
    assert options[:3] == ["2025-05", "2025-04", "2025-03"]


def test_the_report_agrees_on_what_is_provisional(tiny):
    """The command line says the same of March (final) and April (provisional)."""
    assert cli_json(tiny.db, "report", "--month", "2025-03")["provisional"] is False
    assert cli_json(tiny.db, "report", "--month", "2025-04")["provisional"] is True


@pytest.mark.parametrize(
    "lang,may,april,alone",
    [
        ("en", "provisional — expected 6 (0–95)", "provisional — expected 4 (2–8)", "provisional"),
        ("fr", "provisoire — attendu 6 (0–95)", "provisoire — attendu 4 (2–8)", "provisoire"),
        ("nl", "voorlopig — verwacht 6 (0–95)", "voorlopig — verwacht 4 (2–8)", "voorlopig"),
    ],
)
def test_cards_of_a_provisional_month_say_where_it_is_expected(tiny, lang, may, april, alone):
    page = _rendered(tiny, "/", lang=lang, month="2025-05")
    words, months = TITLES[lang]
    assert _children(_component(page, "state-title")) == f"{words} — {months['2025-05']}"
    assert _component(page, "state-provisional") is not None
    assert _children(_component(page, "state-card-total-patients_initiated")) == "3"
    assert _children(_component(page, "state-card-total-expected")) == may
    assert _children(_component(page, "state-card-5-expected")) == may
    assert _children(_component(page, "state-card-7-expected")) == alone
    assert _children(_component(page, "state-card-10-expected")) == alone
    page = _rendered(tiny, "/", lang=lang, month="2025-04")
    assert _children(_component(page, "state-card-total-expected")) == april


def test_trend_shows_provisional_months_as_nowcast_bands(tiny):
    page = _rendered(tiny, "/", lang="en")
    figure = _component(page, "state-trend")["props"]["figure"]
    remainder = _trace(figure, "Expected remainder (nowcast)")
    assert remainder["x"] == ["2025-04-01", "2025-05-01"]
    assert remainder["y"] == pytest.approx([0.6, 3.0])
    assert remainder["marker"]["pattern"]["shape"] == "/"
    # Known parts stay solid: the scheme 5 bars of April and May are the 3 starts known.
    known = _trace(figure, "5 steps")
    assert known["y"][-2:] == [3, 3]
    assert "pattern" not in (known.get("marker") or {})
    for name, up, down in (("95 % interval", 88.8, 5.6), ("80 % interval", 14.1, 4.2)):
        bars = _trace(figure, name)
        assert bars["y"] == pytest.approx([3.6, 6.0])
        assert bars["error_y"]["array"][1] == pytest.approx(up)
        assert bars["error_y"]["arrayminus"][1] == pytest.approx(down)
    # April's 95 %: 8.2 - 3.6 = 4.6 up, 3.6 - 1.6 = 2.0 down.
    bars = _trace(figure, "95 % interval")
    assert bars["error_y"]["array"][0] == pytest.approx(4.6)
    assert bars["error_y"]["arrayminus"][0] == pytest.approx(2.0)


def test_publication_view_has_no_band_for_masked_counts(tiny):
    """Every count is 1-4: masked, and its nowcast with it (SPEC §9, as the exports)."""
    page = _rendered(tiny, "/", lang="en", view="publication", month="2025-05")
    assert _children(_component(page, "state-card-total-patients_initiated")) == "<5"
    assert _children(_component(page, "state-card-total-expected")) == "provisional"
    figure = _component(page, "state-trend")["props"]["figure"]
    assert _trace(figure, "Expected remainder (nowcast)") is None
    assert _trace(figure, "95 % interval") is None


# --- the actuarial page -----------------------------------------------------------------------


def test_nowcast_table_and_completion_factors(tiny):
    page = _rendered(tiny, "/actuarial", lang="en")
    assert _children(_component(page, "actuarial-title")) == "Actuarial review"
    assert _table(page, "actuarial-nowcast") == [
        ["April 2025", "3", "3.6", "2.5 – 5.2", "1.6 – 8.2", "83.3%"],
        ["May 2025", "3", "6", "1.8 – 20.1", "0.4 – 94.8", "50.0%"],
    ]
    assert _table(page, "actuarial-factors") == [
        ["0", "50.0%", "2.000"],
        ["1", "83.3%", "1.200"],
    ]


def test_triangle_heat_map(tiny):
    page = _rendered(tiny, "/actuarial", lang="en")
    heat = _component(page, "actuarial-triangle")["props"]["figure"]["data"][0]
    assert heat["type"] == "heatmap"
    # Lags up to the last that added anything (2), and one more (3): lag 4 is left out.
    assert heat["x"] == [0, 1, 2, 3]
    assert heat["z"] == [
        [2, 1, 1, 0],
        [1, 2, 1, 0],
        [3, 1, 0, None],
        [2, 1, None, None],
        [3, None, None, None],
    ]
    fees = _rendered(tiny, "/actuarial", lang="fr", metric="fees_estimated_eur", scheme="5")
    heat = _component(fees, "actuarial-triangle")["props"]["figure"]["data"][0]
    assert heat["z"][0][:3] == pytest.approx([46.48, 23.24, 23.24])
    assert heat["text"][0][0] == "46,48\u00a0€"
    rows = _table(fees, "actuarial-nowcast")
    assert rows[0][:3] == ["avril 2025", "69,72\u00a0€", "83,66\u00a0€"]
    assert rows[1][:3] == ["mai 2025", "69,72\u00a0€", "139,44\u00a0€"]


def test_backtest_table_says_when_the_nowcast_loses(tiny):
    page = _rendered(tiny, "/actuarial", lang="en")
    rows = _table(page, "actuarial-backtest")
    starts = [r for r in rows if r[1] == rows[0][1]]  # patients initiated, lags 0, 1, 2
    assert starts == [
        ["0", rows[0][1], "0", "—", "—", "—", "—", ""],
        ["1", rows[0][1], "1", "0.0%", "33.3%", "0%", "0%", "nowcast not closer"],
        ["2", rows[0][1], "2", "0.0%", "0.0%", "100%", "100%", "nowcast not closer"],
    ]


def test_budget_chart_and_projection(tiny):
    page = _rendered(tiny, "/actuarial", lang="en")
    summary = _children(_component(page, "actuarial-budget-summary"))
    assert summary.startswith("Year-end projection €1,152.70 (80 %: €433.3")
    assert "of the annual budget of €878,000.00" in summary
    figure = _component(page, "actuarial-budget")["props"]["figure"]
    billed = _trace(figure, "Fees booked (billing month), cumulative")
    assert billed["y"] == pytest.approx([46.48, 92.96, 232.40, 325.36, 418.32])
    delivery = _trace(figure, "Fees by delivery month (known + nowcast), cumulative")
    assert delivery["x"][-1] == "2025-05-01"
    assert delivery["y"] == pytest.approx([92.96, 185.92, 278.88, 362.54, 501.98], abs=0.01)
    projection = _trace(figure, "Year-end projection")
    assert projection["x"][0] == "2025-05-01" and projection["x"][-1] == "2025-12-01"
    assert projection["y"][-1] == pytest.approx(1152.70, abs=0.01)
    fan = _trace(figure, "95 % interval")
    top, bottom = max(fan["y"]), min(fan["y"])
    assert (top, bottom) == (pytest.approx(2252.9, abs=0.1), pytest.approx(52.5, abs=0.1))
    envelope = [s for s in figure["layout"]["shapes"] if s.get("y0") == s.get("y1")]
    assert envelope[0]["y0"] == 878000.0


@pytest.mark.parametrize("lang", ["fr", "nl", "en"])
def test_publication_view_shows_masked_nowcasts_and_the_backtest(tiny, lang):
    page = _rendered(tiny, "/actuarial", lang=lang, view="publication")
    assert _component(page, "actuarial-publication-note") is not None
    assert _component(page, "actuarial-backtest") is not None
    for hidden in ("actuarial-triangle", "actuarial-factors", "actuarial-budget"):
        assert _component(page, hidden) is None
    # The nowcasts as the export gives them: known 3 masked, no nowcast, no interval (the
    # share known, from a year of months summed, stays).
    rows = _table(page, "actuarial-nowcast")
    assert [r[1:5] for r in rows] == [["<5", "—", "", ""]] * 2
    fees = _rendered(tiny, "/actuarial", lang=lang, view="publication", metric=FEES)
    assert [r[1:5] for r in _table(fees, "actuarial-nowcast")] == [["—", "—", "", ""]] * 2


# --- in the browser --------------------------------------------------------------------------


def test_pages_in_the_browser(served, browser):
    """The state page opens on the last month that is not provisional, in fr, nl and en: the
    served warehouse's data end on 2025-06-30 (tests/browser.py), its as-of date; April 2025
    is final from 2025-04-30 + 60 = 2025-06-29, May not before 2025-07-30: April. The
    actuarial page renders in the three languages once its review is computed; no console
    error."""
    month = "2025-04"
    june = json.loads(served.cli("report", "--month", "2025-06", "--no-suppress").stdout)
    assert june["as_of"] == "2025-06-30"
    for value, provisional in ((month, False), ("2025-05", True)):
        doc = json.loads(served.cli("report", "--month", value, "--no-suppress").stdout)
        assert doc["provisional"] is provisional
    for lang in ("fr", "nl", "en"):
        open_page(browser, f"{served.url}/?lang={lang}", "state-cards", timeout=60)
        words, _ = TITLES[lang]
        title = text_of(browser, "state-title")
        open_page(browser, f"{served.url}/?lang={lang}&month={month}", "state-cards")
        assert title == text_of(browser, "state-title")
        assert title.startswith(words)
        assert title.endswith({"fr": "avril 2025", "nl": "april 2025", "en": "April 2025"}[lang])
        assert console_errors(browser) == []
    for lang, heading in (("fr", "Revue actuarielle"), ("nl", "Actuariële analyse"),
                          ("en", "Actuarial review")):  # fmt: skip
        open_page(browser, f"{served.url}/actuarial?lang={lang}", "actuarial-title", timeout=60)
        assert text_of(browser, "actuarial-title") == heading
        wait_for(browser, "actuarial-budget", timeout=300)
        wait_for(browser, "actuarial-triangle", timeout=30)
        assert console_errors(browser) == []


def test_while_the_review_is_computed_the_page_says_so_then_fills_in(tiny, monkeypatch):
    """A second app on the same warehouse has its own review, not started yet: the actuarial
    page, not waiting, says it is being computed and polls; once the review is there, the poll
    gives the page (April's nowcast 3.6, as above)."""
    from dashboard import actuarial
    from dashboard.app import create_app
    from tests.test_dashboard_bzra import _page

    app = create_app(tiny.db)  # (imports the pages again)
    monkeypatch.setattr(_page("/actuarial"), "PAGE_WAIT", 0)
    page = _rendered(app, "/actuarial", lang="nl")
    assert _component(page, "actuarial-pending") is not None
    assert _component(page, "actuarial-poll") is not None
    assert actuarial.review(app.server.config["BENZO_WAREHOUSE"], None) is not None
    with app.server.test_request_context():
        content = _page("/actuarial").poll(1, "?lang=nl")
    filled = json.loads(json.dumps(content, cls=PlotlyJSONEncoder))
    assert _table({"props": {"children": filled}}, "actuarial-nowcast")[0][:3] == [
        "april 2025",
        "3",
        "3,6",
    ]
