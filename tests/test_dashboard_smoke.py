"""The dashboard shell and its first pages, built by the factory on a real warehouse.

(The browser tests of issue 4 drive these pages in headless Chromium; this is the quick check.)
"""

from __future__ import annotations

import importlib

import dash
import pytest

from dashboard.app import create_app
from tests.conftest import CANONICAL_HEADER, write_delimited


def _page(path: str):
    entry = next(p for p in dash.page_registry.values() if p["path"] == path)
    return importlib.import_module(entry["module"])


@pytest.fixture
def app(cli, db, tmp_path):
    rows = [
        ["P1", "PH1", "03/03/2025", "5521950", "1", "23,24"],
        ["P2", "PH1", "04/03/2025", "5521976", "1", "23,24"],
        ["P3", "PH2", "05/03/2025", "5521976", "1", "23,24"],
        ["P1", "PH1", "03/03/2025", "5521984", "1", "15,71"],
    ]
    assert (
        cli("--db", db, "load", write_delimited(tmp_path / "a.csv", CANONICAL_HEADER, rows))[0] == 0
    )
    return create_app(db)


def test_shell_serves(app):
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/_dash-layout").status_code == 200


def _find(component, component_id):
    """The component with `component_id` in a layout tree (None if absent)."""
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if hasattr(child, "to_plotly_json"):
            found = _find(child, component_id)
            if found is not None:
                return found
    return None


@pytest.mark.parametrize("view,expected", [("analyst", ["1", "0", "2", "3"]),
                                           ("publication", ["<5", "0", "<5", "<5"])])  # fmt: skip
def test_publication_view_suppresses_the_cards(app, view, expected):
    # Patients initiated in March 2025, by hand: 1 (5 steps), 0 (7), 2 (10), 3 in total; the
    # publication view shows 1 to 4 as "<5" (SPEC §9) and leaves 0 as it is.
    with app.server.test_request_context():
        page = _page("/").layout(lang="en", month="2025-03", view=view)
    shown = [
        _find(page, f"state-card-{s}-patients_initiated").children
        for s in ("5", "7", "10", "total")
    ]
    assert shown == expected
    assert (_find(page, "state-publication-note") is not None) == (view == "publication")


def test_data_page_lists_the_ledger(app):
    with app.server.test_request_context():
        page = _page("/data").layout(lang="en")
    ledger = page.children[1].rowData
    assert [(r["file_name"], r["rows_new"]) for r in ledger] == [("a.csv", 4)]
