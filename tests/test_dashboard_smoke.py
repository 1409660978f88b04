"""The dashboard shell and its first pages, built by the factory on a real warehouse.

(The browser tests of issue 4 drive these pages in headless Chromium; this is the quick check.)
"""

from __future__ import annotations

import importlib
import json

import dash
import pytest

from dashboard.app import create_app
from etl.registry import load_registry
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


@pytest.mark.parametrize("lang,title", [("fr", "État des lieux mensuel"),
                                        ("nl", "Maandelijkse stand van zaken"),
                                        ("en", "Monthly state of play")])  # fmt: skip
def test_state_of_play_in_each_language(app, cli, db, lang, title):
    with app.server.test_request_context():
        page = _page("/").layout(lang=lang, month="2025-03")
    text = json.dumps(
        page.to_plotly_json(), default=lambda o: o.to_plotly_json(), ensure_ascii=False
    )
    assert f"{title} — 2025-03" in text
    report = json.loads(cli("--db", db, "report", "--month", "2025-03", "--no-suppress")[1])
    # Patients initiated in March 2025, by hand: 1 (5 steps), 0 (7), 2 (10), 3 in total.
    assert [report["schemes"][s]["patients_initiated"] for s in ("5", "7", "10", "total")] == [
        1, 0, 2, 3,
    ]  # fmt: skip
    label = load_registry().metric("patients_initiated").label(lang)
    (row,) = [r for r in page.children[3].children[1].children if r.children[0].children == label]
    assert [c.children for c in row.children[1:]] == ["1", "0", "2", "3"]


def test_data_page_lists_the_ledger(app):
    with app.server.test_request_context():
        page = _page("/data").layout(lang="en")
    ledger = page.children[1].rowData
    assert [(r["file_name"], r["rows_new"]) for r in ledger] == [("a.csv", 4)]
