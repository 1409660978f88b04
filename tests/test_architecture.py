"""The direction of the code (issue 13): the pages read figures through etl.figures and hold no
SQL of their own.

A page that needs a figure calls a function of etl/figures.py with the reader
`warehouse().reader(as_of)` (dashboard/data.py); the SQL lives in etl/figures.py, where the
command line and the report pack read the same figures.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PAGES = sorted((Path(__file__).parent.parent / "dashboard" / "pages").glob("*.py"))
# What SQL looks like in a string literal (words of the interface never read like this).
SQL = re.compile(
    r"\bselect\b[\s\S]+?\bfrom\b"
    r"|\bfrom\s+\{mart_"
    r"|\b(order|group)\s+by\b"
    r"|\bwhere\s+[\w.]+\s*(=|<|>|!=|\bis\b|\bin\b|\bbetween\b|\blike\b)",
    re.IGNORECASE,
)
# Warehouse methods that take SQL (`rows`) and the keywords that carry SQL fragments as text
# (`order=30` of dash.register_page is a number, not SQL).
SQL_METHODS = {"rows", "mart"}
SQL_KEYWORDS = {"where", "order", "sql"}


def _strings(tree: ast.AST):
    """Every string literal of a module, f-strings' literal parts included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _sql_calls(tree: ast.AST):
    """Calls that hand SQL to the warehouse: `x.rows(...)`, `x.mart(...)`, text given as
    `where=`, `order=` or `sql=`."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Attribute) and node.func.attr in SQL_METHODS:
            yield node.lineno, f".{node.func.attr}(...)"
        for keyword in node.keywords:
            text = isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str)
            if keyword.arg in SQL_KEYWORDS and (text or isinstance(keyword.value, ast.JoinedStr)):
                yield node.lineno, f"{keyword.arg}=..."


@pytest.mark.parametrize("path", PAGES, ids=[p.name for p in PAGES])
def test_a_page_holds_no_sql(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [(line, text[:80]) for line, text in _strings(tree) if SQL.search(text)]
    found += list(_sql_calls(tree))
    assert found == [], f"{path.name}: read figures through etl.figures instead"


def test_the_check_finds_sql():
    """The check itself: it would have failed on the pages as they were before etl.figures."""
    before = '''
COUNTS_SQL = """
select rule_id, count(*) as n_findings
from {mart_compliance_findings}
group by rule_id
"""
steps = wh.mart("mart_programme_steps", "scheme = ?", [5], order="step_number")
rows = wh.rows("select count(*) as n from {mart_data_quality_unmatched_corrections}")
words = {"en": "Key-letter value P from {date}", "fr": "Sélectionnez le mois où commencer"}
'''
    tree = ast.parse(before)
    strings = [text for _, text in _strings(tree) if SQL.search(text)]
    assert len(strings) == 2
    assert [call for _, call in _sql_calls(tree)] == [".mart(...)", "order=...", ".rows(...)"]


def test_no_test_imports_a_page_module():
    """Dash imports the pages itself, by its own module names ("pages.data"); a test importing
    `dashboard.pages.data` registers the page's path a second time, and every app created
    afterwards in the same run answers 500 (found in CI: "modules ['dashboard.pages.data',
    'pages.data'] have duplicate paths"). Helpers a test needs live in dashboard/ui.py."""
    tests = Path(__file__).resolve().parent
    pattern = re.compile(r"^\s*(from|import)\s+dashboard\.pages\b", re.M)
    offenders = sorted(p.name for p in tests.glob("*.py") if pattern.search(p.read_text("utf-8")))
    assert offenders == []
