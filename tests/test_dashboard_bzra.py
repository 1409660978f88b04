"""SPEC v2 §14 on the dashboard, rendered through the app's own server: R16-R18 on the
compliance page and "after the programme" (BZRA-free at 90/180/365 days) on the outcomes page.

Without a BZRA delivery in the warehouse, both say "not observable with the exports loaded",
never 0. With the hand-made warehouse of tests/test_bzra.py (worked by hand there; start
year 2025, every programme scheme 5, as-of 2026-06-30):
- completed: PF1-PF4 (T = 2025-02-24); PF4's pharmacy PH9 has no BZRA delivery, so 3 are
  observable at 90, 180 and 365 days. PF1 has a delivery on T + 90 (not free at any N), PF2
  on T + 91 (free at 90 only), PF3 none: BZRA-free 2 of 3 at 90 days (66.7 %), 1 of 3 at 180
  and 365 (33.3 %).
- all closed: adds the 7 stopped one-step programmes at PH1 (T = 2025-03-10, T + 365 =
  2026-03-10 <= as-of), all observable, all BZRA-free but P18a (delivery on 03-11 = T + 1):
  10 observable; free 2 + 6 = 8 at 90 days (80.0 %), 1 + 6 = 7 at 180 and 365 (70.0 %).
- schemes 7 and 10: no closed programme: nothing observable.
- publication view (threshold 5): completed 3 observable -> "<5", 2 free -> "<5", rate hidden;
  closed at 90: 10 observable shown, 10 - 8 = 2 relapsed masked, so the 8 free are masked too
  ("x", SPEC §9.2 on the line free + relapsed = observable) and the rate hidden (rule 1).
- compliance: R16, R17, R18 = 5, 1, 4 (tests/test_bzra.py's count).
"""

from __future__ import annotations

import importlib
import io
import json

import openpyxl
import pytest
from plotly.utils import PlotlyJSONEncoder

from tests.sqlcase import INIT5, RED10, build, every, programme
from tests.test_bzra import AS_OF, BZRA_LINES, LINES, build_with_bzra

WORDS = {
    "fr": "non observable avec les exports chargés",
    "nl": "niet waarneembaar met de geladen exports",
    "en": "not observable with the exports loaded",
}


def _page(path: str):
    import dash

    entry = next(p for p in dash.page_registry.values() if p["path"] == path)
    return importlib.import_module(entry["module"])


def _app(db):
    from dashboard.app import create_app

    return create_app(db)


def _rendered(app, path: str, **params) -> dict:
    """The layout of the page at `path` for `params`, as the JSON the browser receives."""
    with app.server.test_request_context():
        layout = _page(path).layout(**params)
    text = json.dumps(layout, cls=PlotlyJSONEncoder)
    return json.loads(text)


def _component(node, wanted: str):
    """The component of id `wanted` in a rendered layout (None: absent)."""
    if isinstance(node, dict):
        if node.get("props", {}).get("id") == wanted:
            return node
        return next((c for v in node.values() if (c := _component(v, wanted))), None)
    if isinstance(node, list):
        return next((c for v in node if (c := _component(v, wanted))), None)
    return None


def _text(node, wanted: str) -> str:
    found = _component(node, wanted)
    assert found is not None, wanted
    return found["props"]["children"]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """No BZRA line: two completed 5-step programmes (2025-01-06 and 2025-01-07) and a later
    initiation so that T + 365 = 2026-02-24 is on or before the as-of date."""
    lines = (
        programme("A", "2025-01-06", INIT5, every("2025-01-06", 10, 5, RED10))
        + programme("B", "2025-01-07", INIT5, every("2025-01-07", 10, 5, RED10))
        + programme("C", AS_OF, INIT5, [])
    )
    return _app(build(tmp_path_factory.mktemp("plain"), lines))


@pytest.fixture(scope="module")
def with_bzra(tmp_path_factory):
    return _app(build_with_bzra(tmp_path_factory.mktemp("bzra-ui"), LINES, BZRA_LINES))


@pytest.mark.parametrize("lang", ["fr", "nl", "en"])
def test_compliance_r16_r18_not_observable_without_bzra(plain, lang):
    page = _rendered(plain, "/compliance", lang=lang)
    for rule in ("R16", "R17", "R18"):
        assert _text(page, f"compliance-count-{rule}") == WORDS[lang]
    assert _text(page, "compliance-count-R01") == "0"  # an observable rule: 0 is 0
    chosen = _rendered(plain, "/compliance", lang=lang, rule="R16")
    assert _component(chosen, "compliance-not-observable") is not None


def test_compliance_publication_view_without_bzra(plain):
    """The disclosure lines leave the not-observable rules out: the page renders."""
    page = _rendered(plain, "/compliance", lang="en", view="publication")
    assert _text(page, "compliance-count-R18") == WORDS["en"]


def test_compliance_r16_r18_counts_with_bzra(with_bzra):
    page = _rendered(with_bzra, "/compliance", lang="en")
    got = [_text(page, f"compliance-count-{r}") for r in ("R16", "R17", "R18")]
    assert got == ["5", "1", "4"]
    assert _component(page, "compliance-per-month") is not None


@pytest.mark.parametrize("lang", ["fr", "nl", "en"])
def test_outcomes_after_programme_not_observable_without_bzra(plain, lang):
    page = _rendered(plain, "/outcomes", lang=lang)
    assert _component(page, "outcomes-bzra-none") is not None
    assert _component(page, "outcomes-bzra-completed-table") is None


def test_outcomes_after_programme_by_hand(with_bzra):
    page = _rendered(with_bzra, "/outcomes", lang="en")
    assert _component(page, "outcomes-bzra-none") is None

    def cells(group, days):
        prefix = f"outcomes-bzra-{group}-5-{days}"
        return tuple(_text(page, f"{prefix}-{part}") for part in ("observable", "free", "rate"))

    assert cells("completed", 90) == ("3", "2", "66.7%")
    assert cells("completed", 180) == ("3", "1", "33.3%")
    assert cells("completed", 365) == ("3", "1", "33.3%")
    assert cells("closed", 90) == ("10", "8", "80.0%")
    assert cells("closed", 180) == ("10", "7", "70.0%")
    assert cells("closed", 365) == ("10", "7", "70.0%")
    # Scheme 10: no closed programme, nothing observable, never 0 %.
    ten = tuple(_text(page, f"outcomes-bzra-closed-10-90-{p}") for p in ("free", "rate"))
    assert ten == (WORDS["en"], "—")


def test_outcomes_after_programme_start_year(with_bzra):
    """Start year 2025 holds every programme (same figures); 2024 has none: all years."""
    page = _rendered(with_bzra, "/outcomes", lang="fr", start_year="2025")
    assert _text(page, "outcomes-bzra-year").endswith("2025")
    assert _text(page, "outcomes-bzra-closed-5-90-rate").startswith("80,0")
    assert _text(page, "outcomes-bzra-closed-5-90-free") == "8"
    other = _rendered(with_bzra, "/outcomes", lang="en", start_year="2024")
    assert _text(other, "outcomes-bzra-year").endswith("All years")


def test_outcomes_after_programme_publication(with_bzra):
    page = _rendered(with_bzra, "/outcomes", lang="en", view="publication")
    completed = [
        _text(page, f"outcomes-bzra-completed-5-90-{p}") for p in ("observable", "free", "rate")
    ]
    assert completed == ["<5", "<5", "—"]
    closed = [_text(page, f"outcomes-bzra-closed-5-90-{p}") for p in ("observable", "free", "rate")]
    assert closed == ["10", "x", "—"]


# --- the report pack: the same table (SPEC §14) ---------------------------------------------


def _pack(db, suppress: bool = False):
    from etl.base import warehouse
    from etl.base.config import load_config
    from etl.base.disclosure import Disclosure
    from etl.outputs import pack

    con = warehouse.connect(db, read_only=True)
    try:
        return pack.build_pack(con, "2026-06", Disclosure(5, enabled=suppress), load_config())
    finally:
        con.close()


@pytest.fixture(scope="module")
def bzra_db(tmp_path_factory):
    return build_with_bzra(tmp_path_factory.mktemp("bzra-pack"), LINES, BZRA_LINES)


def test_pack_bzra_free_table_by_hand(bzra_db):
    """Scheme 5 (every programme of the warehouse): the module docstring's figures."""
    from etl.outputs import pack_render

    built = _pack(bzra_db)
    table = built.tables["bzra_free"]
    rows = {(r[0], r[1], r[2]): r[3:] for r in table.rows}
    assert rows[(5, "completed", 90)] == [3, 2, 0.6667]
    assert rows[(5, "completed", 180)] == [3, 1, 0.3333]
    assert rows[(5, "closed", 90)] == [10, 8, 0.8]
    assert rows[(5, "closed", 365)] == [10, 7, 0.7]
    assert {k[0] for k in rows} == {5}  # no closed programme of scheme 7 or 10
    assert table.note == "pack_bzra_note"
    for lang, phrase in (("fr", "Sans BZRA"), ("nl", "BZRA-vrij"), ("en", "BZRA-free")):
        document = pack_render.to_html(built, lang)
        assert 'id="bzra_free"' in document and phrase in document
    book = openpyxl.load_workbook(io.BytesIO(pack_render.to_xlsx(built, "fr")))
    sheet = [[c.value for c in row] for row in book["Après le programme"].iter_rows()]
    assert ["Tous les programmes clôturés (terminés ou arrêtés)", 90, 10, 8] in [
        row[1:5] for row in sheet
    ]
    suppressed = {(r[0], r[1], r[2]): r[3:] for r in _pack(bzra_db, True).tables["bzra_free"].rows}
    assert suppressed[(5, "closed", 90)] == [10, "x", None]
    assert suppressed[(5, "completed", 90)] == ["<5", "<5", None]


def test_pack_bzra_free_not_observable_without_bzra(tmp_path):
    """Two completed programmes, no BZRA line: rows with 0 observable and empty (null)
    BZRA-free and rate, never 0, and the note says "not observable"."""
    lines = programme("A", "2025-01-06", INIT5, every("2025-01-06", 10, 5, RED10)) + programme(
        "C", AS_OF, INIT5, []
    )
    table = _pack(build(tmp_path, lines)).tables["bzra_free"]
    assert table.rows and all(r[3:] == [0, None, None] for r in table.rows)
    assert table.note == "outcomes_bzra_none"
