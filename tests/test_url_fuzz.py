"""Hostile URLs: every page and every download of the dashboard, with hostile values of every
URL parameter, through the app's own server (issue 19 item 4: "no URL parameter produces a 500
or a page over 2 MB").

Before the as-of date was clamped (dashboard/ui.py), `?as_of=9999-12-31` made the home page
9.6 MB and the pack 17.5 MB, `/data` answered 500 and the downloads at `as_of=2019-01-01`
answered 500.
"""

from __future__ import annotations

import json

import pytest

from bench.served import callback_body, page_body
from tests.browser import warehouse_copy

LIMIT = 2_000_000  # bytes: the largest answer a URL may cause

PAGES = {
    "/": ("month",),
    "/outcomes": ("rate", "scheme", "start_year"),
    "/regions": ("scheme", "funnel_measure", "funnel_by"),
    "/fees": ("period",),
    "/compliance": ("rule",),
    "/data": (),
    "/methodology": (),
}
GLOBAL = ("lang", "view", "as_of")
UNKNOWN = ("utm_source", "__proto__", "layout")

HOSTILE = (
    "",
    "9999-12-31",
    "0001-01-01",
    "2019-01-01",
    "2030-01-01",
    "2025-02-30",
    "2025-13",
    "-1",
    "NaN",
    "1e308",
    "99999999999999999999",
    "²",  # str.isdigit() says yes, int() says no
    "١٢٣",
    "<script>alert(1)</script>",
    "'; drop table loads; --",
    "../../etc/passwd",
    "\x00",
    "\u202e",
    "x" * 20_000,
    "2025-03-01" * 1_000,
)
# The values each parameter is also tried with alone (the others as a reader leaves them).
ALONE = ("9999-12-31", "0001-01-01", "garbage", "²", "x" * 20_000)


# The pack's download and the message beside its buttons (a PDF without Chromium says so).
PACK_OUTPUTS = ["state-pack-download.data", "state-pack-message.children"]


def _button(output: str | list[str], buttons: tuple[str, ...], pressed: str, search: str) -> dict:
    inputs = [(b, "n_clicks", 1 if b == pressed else None) for b in buttons]
    return callback_body(output, inputs, [("url", "search", search)], changed=f"{pressed}.n_clicks")


DOWNLOADS = {
    "state-csv": lambda s: _button(
        "state-download.data",
        ("state-download-csv-button", "state-download-xlsx-button"),
        "state-download-csv-button",
        s,
    ),
    "state-xlsx": lambda s: _button(
        "state-download.data",
        ("state-download-csv-button", "state-download-xlsx-button"),
        "state-download-xlsx-button",
        s,
    ),
    "pack-xlsx": lambda s: _button(
        PACK_OUTPUTS,
        ("state-pack-xlsx-button", "state-pack-html-button", "state-pack-pdf-button"),
        "state-pack-xlsx-button",
        s,
    ),
    "pack-html": lambda s: _button(
        PACK_OUTPUTS,
        ("state-pack-xlsx-button", "state-pack-html-button", "state-pack-pdf-button"),
        "state-pack-html-button",
        s,
    ),
    "compliance": lambda s: _button(
        "compliance-download.data", ("compliance-export-button",), "compliance-export-button", s
    ),
}
DOWNLOAD_PARAMS = (*GLOBAL, "month", "rule", *UNKNOWN)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """The app's test client on the generated warehouse of the browser tests."""
    from dashboard.app import create_app

    db = warehouse_copy(tmp_path_factory.mktemp("fuzz"))
    return create_app(db).server.test_client()


def _search(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return "?" + urlencode(params)


def _check(client, body: dict, what: str) -> None:
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code < 500, (what, response.data[-500:])
    assert len(response.data) <= LIMIT, (what, len(response.data))
    if response.status_code == 200:
        json.loads(response.data)


_SHELL_OUTPUTS: list[str] = []


def _shell_body(client, search: str, path: str) -> dict:
    """The shell callback's request, its outputs read from the app itself (they change as the
    header gains or loses controls)."""
    if not _SHELL_OUTPUTS:
        deps = client.get("/_dash-dependencies").get_json()
        (shell,) = [d["output"] for d in deps if d["output"].startswith("..app-title.children")]
        _SHELL_OUTPUTS.extend(shell.strip(".").split("..."))
    return callback_body(_SHELL_OUTPUTS, [("url", "search", search), ("url", "pathname", path)])


def _picker_body(search: str) -> dict:
    outputs = [
        "app-as-of.min_date_allowed", "app-as-of.max_date_allowed", "app-as-of.display_format",
        "app-as-of.initial_visible_month",
    ]  # fmt: skip
    return callback_body(outputs, [("url", "search", search)])


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_with_every_parameter_hostile(client, path):
    """All of a page's parameters at once set to each hostile value, then each parameter
    alone with the worst values: never a 500, never an answer over 2 MB."""
    names = (*GLOBAL, *PAGES[path], *UNKNOWN)
    for value in HOSTILE:
        search = _search(dict.fromkeys(names, value))
        _check(client, page_body(path, search), (path, "all", value[:30]))
    for name in names:
        for value in ALONE:
            search = _search({"lang": "en", name: value})
            _check(client, page_body(path, search), (path, name, value[:30]))
            _check(client, _shell_body(client, search, path), ("shell", path, name, value[:30]))
            _check(client, _picker_body(search), ("picker", name, value[:30]))


@pytest.mark.parametrize("download", list(DOWNLOADS))
def test_every_download_with_every_parameter_hostile(client, download):
    """The downloads read the URL too (the pack takes seconds to build: fewer values)."""
    make = DOWNLOADS[download]
    pack = download.startswith("pack")
    values = ("9999-12-31", "x" * 20_000) if pack else HOSTILE
    for value in values:
        _check(client, make(_search(dict.fromkeys(DOWNLOAD_PARAMS, value))), (download, value[:30]))
    for name in () if pack else DOWNLOAD_PARAMS:
        for value in ("9999-12-31", "garbage"):
            search = _search({"lang": "en", name: value})
            _check(client, make(search), (download, name, value))


def test_the_index_page_with_a_hostile_query(client):
    """The HTML shell (GET) whatever the query string."""
    for value in HOSTILE:
        response = client.get("/" + _search(dict.fromkeys((*GLOBAL, "month"), value)))
        assert response.status_code < 500
        assert len(response.data) <= LIMIT


def test_a_superscript_start_year_is_no_year(client):
    """`?start_year=²` was a 500 on the outcomes page: "²".isdigit() is true, int("²") fails."""
    response = client.post(
        "/_dash-update-component", json=page_body("/outcomes", "?lang=en&start_year=%C2%B2")
    )
    assert response.status_code == 200
