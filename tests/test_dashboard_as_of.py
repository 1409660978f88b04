"""The as-of date of the URL is checked once, where the URL state is read (dashboard/ui.py):
clamped to the data's range, an unreadable date answered with a plain message (issues 18, 19).

The warehouse holds four lines delivered on 3, 4 and 5 March 2025 (the first line date is
3 March, the latest — SPEC §5's default as-of date — 5 March).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json

import dash
import pytest

from bench.served import callback_body, find_component, page_body
from dashboard.app import create_app
from dashboard.ui import clamp_as_of, view_state
from etl.cli import main as cli_main
from tests.conftest import CANONICAL_HEADER, four_line_warehouse, write_delimited

FIRST = dt.date(2025, 3, 3)
LATEST = dt.date(2025, 3, 5)


def _page(path: str):
    entry = next(p for p in dash.page_registry.values() if p["path"] == path)
    return importlib.import_module(entry["module"])


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The dashboard on the four lines (read only by these tests: built once)."""
    folder = tmp_path_factory.mktemp("as_of")
    db = four_line_warehouse(folder)
    return create_app(db)


@pytest.mark.parametrize(
    "asked,expected,note",
    [
        (None, None, None),
        ("", None, None),
        ("2025-03-04", dt.date(2025, 3, 4), None),
        ("2025-03-03", FIRST, None),
        ("2025-03-05", LATEST, None),
        ("9999-12-31", LATEST, "as_of_after_data"),
        ("2030-01-01", LATEST, "as_of_after_data"),
        ("2025-03-06", LATEST, "as_of_after_data"),
        ("2025-03-02", FIRST, "as_of_before_data"),
        ("2019-01-01", FIRST, "as_of_before_data"),
        ("0001-01-01", FIRST, "as_of_before_data"),
        ("garbage", None, "as_of_not_a_date"),
        ("2025-02-30", None, "as_of_not_a_date"),
        ("x" * 10_000, None, "as_of_not_a_date"),
    ],
)
def test_clamp_as_of(asked, expected, note):
    """By hand: a date inside [3 March, 5 March] is kept; after 5 March it becomes 5 March,
    before 3 March it becomes 3 March; anything that is not a YYYY-MM-DD date gives the
    default (None: the latest delivery) and a note."""
    as_of, notice = clamp_as_of(asked, FIRST, LATEST)
    assert as_of == expected
    assert (notice.key if notice else None) == note


def test_clamp_without_data_keeps_a_readable_date():
    """Before any load there is no range: a date is kept, nonsense still gets its note."""
    assert clamp_as_of("2025-03-04", None, None) == (dt.date(2025, 3, 4), None)
    as_of, notice = clamp_as_of("nonsense", None, None)
    assert as_of is None and notice.key == "as_of_not_a_date"


def test_view_state_clamps_to_the_warehouse(app):
    with app.server.test_request_context():
        assert view_state({"as_of": "9999-12-31"}).as_of == LATEST
        assert view_state({"as_of": "2019-01-01"}).as_of == FIRST
        assert view_state({"as_of": "2025-03-04"}).as_of == dt.date(2025, 3, 4)
        assert view_state({"as_of": "garbage"}).as_of is None


def _find(component, component_id):
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if hasattr(child, "to_plotly_json"):
            found = _find(child, component_id)
            if found is not None:
                return found
    return None


def test_a_date_before_the_data_shows_the_first_day(app):
    """as_of=2019-01-01 used to say "no data loaded". Clamped to 3 March 2025, the events of
    that day only: P1's 5-step initiation, so patients initiated in March 2025 are 1 (5 steps),
    0 (7), 0 (10), 1 in total; the page says the date was moved."""
    with app.server.test_request_context():
        page = _page("/").layout(lang="en", month="2025-03", as_of="2019-01-01")
    shown = [
        _find(page, f"state-card-{s}-patients_initiated").children
        for s in ("5", "7", "10", "total")
    ]
    assert shown == ["1", "0", "0", "1"]
    note = _find(page, "state-as-of-note").children
    assert note == (
        "The as-of date 1 January 2019 is before the first data: "
        "the figures are shown as of 3 March 2025."
    )


def test_a_date_after_the_data_invents_no_month(app):
    """as_of=2030-01-01 used to add the months up to January 2030 as zeros. Clamped to
    5 March 2025 (the latest delivery), the month picker's latest month is March 2025 and the
    figures are the default ones: 1, 0, 2, 3 patients initiated."""
    with app.server.test_request_context():
        page = _page("/").layout(lang="en", month="2025-03", as_of="2030-01-01")
    months = [o["value"] for o in _find(page, "state-month-picker").options]
    assert months[0] == "2025-03"
    shown = [
        _find(page, f"state-card-{s}-patients_initiated").children
        for s in ("5", "7", "10", "total")
    ]
    assert shown == ["1", "0", "2", "3"]
    assert _find(page, "state-as-of-note").children == (
        "The as-of date 1 January 2030 is after the latest data: "
        "the figures are shown as of 5 March 2025."
    )


@pytest.mark.parametrize(
    "lang,text",
    [
        ("fr", "La date de référence « garbage » n'est pas une date (AAAA-MM-JJ) : les chiffres "
               "sont ceux des dernières données (5 mars 2025)."),
        ("nl", "De peildatum ‘garbage’ is geen datum (JJJJ-MM-DD): de cijfers zijn die van de "
               "laatste gegevens (5 maart 2025)."),
        ("en", "The as-of date ‘garbage’ is not a date (YYYY-MM-DD): the figures are those of "
               "the latest data (5 March 2025)."),
    ],
)  # fmt: skip
def test_an_unreadable_date_is_answered_plainly(app, lang, text):
    with app.server.test_request_context():
        page = _page("/").layout(lang=lang, as_of="garbage")
    assert _find(page, "state-as-of-note").children == text


def test_a_very_long_value_is_cut_in_the_message(app):
    with app.server.test_request_context():
        page = _page("/").layout(lang="en", as_of="9" * 5000)
    note = _find(page, "state-as-of-note").children
    assert len(note) < 200 and "…" in note


def _post(client, body) -> tuple[int, int, dict | None]:
    response = client.post("/_dash-update-component", json=body)
    data = json.loads(response.data) if response.status_code == 200 else None
    return response.status_code, len(response.data), data


@pytest.mark.parametrize("path", ["/", "/data", "/compliance", "/fees", "/regions", "/outcomes"])
def test_far_future_as_of_is_small_and_no_error(app, path):
    """?as_of=9999-12-31 made the home page 9.6 MB and /data a 500 (Babel AssertionError on a
    date past year 9999); clamped, each page is the default page plus the note."""
    client = app.server.test_client()
    status, size, data = _post(client, page_body(path, "?lang=en&as_of=9999-12-31"))
    assert status == 200
    assert size < 2_000_000
    prefix = path.strip("/") or "state"
    note = find_component(data, f"{prefix}-as-of-note")
    assert note is not None and "5 March 2025" in note["props"]["children"]


@pytest.mark.parametrize("as_of", ["2019-01-01", "2020-01-01", "9999-12-31", "garbage"])
@pytest.mark.parametrize("button", ["state-download-csv-button", "state-download-xlsx-button"])
def test_downloads_with_any_as_of(app, as_of, button):
    """Downloads with as_of=2019-01-01 were a 500 (IndexError in _chosen_month: no month
    before the data); clamped, March 2025 is there to download."""
    client = app.server.test_client()
    other = (
        "state-download-xlsx-button"
        if button == "state-download-csv-button"
        else "state-download-csv-button"
    )
    body = callback_body(
        "state-download.data",
        [(button, "n_clicks", 1), (other, "n_clicks", None)],
        [("url", "search", f"?lang=en&month=2025-03&as_of={as_of}")],
        changed=f"{button}.n_clicks",
    )
    status, size, data = _post(client, body)
    assert status == 200
    assert data["response"]["state-download"]["data"]["filename"].startswith(
        "state-of-play-2025-03."
    )


@pytest.mark.parametrize("as_of", ["2019-01-01", "9999-12-31"])
def test_the_pack_with_any_as_of(app, as_of):
    """The pack at as_of=9999-12-31 was 17.5 MB (a month per month up to year 9999)."""
    client = app.server.test_client()
    body = callback_body(
        ["state-pack-download.data", "state-pack-message.children"],
        [
            ("state-pack-xlsx-button", "n_clicks", None),
            ("state-pack-html-button", "n_clicks", 1),
            ("state-pack-pdf-button", "n_clicks", None),
        ],  # fmt: skip
        [("url", "search", f"?lang=en&month=2025-03&as_of={as_of}")],
        changed="state-pack-html-button.n_clicks",
    )
    status, size, data = _post(client, body)
    assert status == 200
    assert size < 2_000_000
    assert data["response"]["state-pack-download"]["data"]["filename"] == "report-2025-03-en.html"


@pytest.fixture(scope="module")
def late_app(tmp_path_factory):
    """An export whose first line (1 March 2025, P9's reduction step, no programme) comes two
    days before the first initiation (P1 on 3 March), with a birth year column."""
    folder = tmp_path_factory.mktemp("late")
    header = [*CANONICAL_HEADER, "birth_year"]
    rows = [
        ["P9", "PH1", "01/03/2025", "5521984", "1", "15,71", "1950"],
        ["P1", "PH1", "03/03/2025", "5521950", "1", "23,24", "1960"],
        ["P2", "PH1", "04/03/2025", "5521976", "1", "23,24", "1970"],
    ]
    db = folder / "warehouse.duckdb"
    export = write_delimited(folder / "a.csv", header, rows)
    assert cli_main(["--db", str(db), "load", str(export)]) == 0
    return create_app(db)


@pytest.mark.parametrize("path", ["/outcomes", "/regions"])
def test_an_empty_date_does_not_say_no_data_loaded(late_app, path):
    """as_of=2020-01-01 is clamped to 1 March 2025, when no programme had started: the
    outcomes page said "No data loaded." and the regions page "The export has no birth year
    column" — both false. By hand: data run from 1 March to 4 March 2025."""
    client = late_app.server.test_client()
    status, _, data = _post(client, page_body(path, "?lang=en&as_of=2020-01-01"))
    assert status == 200
    text = json.dumps(data)
    assert "No data loaded" not in text
    assert "no birth year column" not in text
    assert "1 March 2025" in text


def test_the_empty_page_says_what_the_data_cover(late_app):
    from dashboard.ui import empty_page

    with late_app.server.test_request_context():
        page = empty_page(view_state({"lang": "en", "as_of": "2020-01-01"}), id_prefix="x")
    assert _find(page, "x-empty").children == (
        "Nothing to show as of 1 March 2025: the data loaded run from 1 March 2025 to 4 March 2025."
    )
    assert _find(page, "x-as-of-note") is not None


def test_regions_before_any_programme_says_so(late_app):
    with late_app.server.test_request_context():
        page = _page("/regions").layout(lang="en", as_of="2025-03-01")
    text = json.dumps(page.to_plotly_json(), default=lambda c: c.to_plotly_json())
    assert "No patient had started a programme by 1 March 2025." in text


# --- the date picker ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lang,fmt", [("fr", "DD/MM/YYYY"), ("nl", "D/M/YYYY"), ("en", "DD/MM/YYYY")]
)
def test_the_picker_shows_dates_the_readers_way(lang, fmt):
    """CLDR's date in figures with the full year (skeleton yMd): fr-BE dd/MM/y, nl-BE d/M/y,
    en-GB dd/MM/y — in Moment.js tokens for Dash's picker."""
    from dashboard.i18n import picker_date_format

    assert picker_date_format(lang) == fmt


PICKER = (
    "app-as-of.min_date_allowed",
    "app-as-of.max_date_allowed",
    "app-as-of.display_format",
    "app-as-of.initial_visible_month",
)


@pytest.mark.parametrize(
    "search,expected",
    [
        ("?lang=nl", ["2025-03-03", "2025-03-05", "D/M/YYYY", "2025-03-05"]),
        ("?lang=fr&as_of=2025-03-04", ["2025-03-03", "2025-03-05", "DD/MM/YYYY", "2025-03-04"]),
        ("?lang=en&as_of=9999-12-31", ["2025-03-03", "2025-03-05", "DD/MM/YYYY", "2025-03-05"]),
    ],
)
def test_the_picker_is_bounded_by_the_data(app, search, expected):
    """The picker offers 3 to 5 March 2025 only (the first and the latest delivery dates)."""
    client = app.server.test_client()
    body = callback_body(list(PICKER), [("url", "search", search)])
    status, _, data = _post(client, body)
    assert status == 200
    got = [data["response"]["app-as-of"][o.split(".")[1]] for o in PICKER]
    assert got == expected


# --- in Chromium -------------------------------------------------------------------------------


@pytest.mark.parametrize("lang,shown", [("fr", "04/03/2025"), ("nl", "4/3/2025"),
                                        ("en", "04/03/2025")])  # fmt: skip
def test_the_picker_in_the_browser(served, browser, lang, shown):
    """The served warehouse runs from January 2023 to 30 June 2025: the picker shows
    ?as_of=2025-03-04 the reader's way, and a date after the data, clamped, as 30 June 2025."""
    from selenium.webdriver.common.by import By

    from tests.browser import open_page, wait_for

    open_page(browser, f"{served.url}/?lang={lang}&as_of=2025-03-04", "state-cards")
    field = browser.find_element(By.CSS_SELECTOR, "#app-as-of input, input#app-as-of")
    assert field.get_attribute("value") == shown
    open_page(browser, f"{served.url}/?lang=en&as_of=2031-01-01", "state-cards")
    wait_for(browser, "state-as-of-note")
    field = browser.find_element(By.CSS_SELECTOR, "#app-as-of input, input#app-as-of")
    assert field.get_attribute("value") == "30/06/2025"
