"""SPEC §15: the one-pass vintages (etl.nowcast.vintage_history, sql/vintages/) give exactly the
figures of the slow reference path (etl.nowcast.vintage_history_reference: mart_vintage_figures
read once per vintage), so `nowcast` and `budget` print the same JSON as before, faster.

On generated exports (billing delay 0-3 months, corrections, repeat programmes, broken lines)
and on a hand-made warehouse with the edge cases of a vintage: a line without billing month
(known from its load's month), a correction billed later, and a line billed in a month before
its delivery month (visible from its delivery month: the vintage's as-of date filters it out
before; hand-worked below).
"""

from __future__ import annotations

import datetime as dt

import pytest

from etl import nowcast
from etl.base.config import load_config
from etl.base.warehouse import connect
from tests.sqlcase import INIT5, RED30, generated_warehouse, line
from tests.test_vintages import LINES, warehouse


def _histories(db, first=None, last=None):
    config = load_config()
    con = connect(db, read_only=True, config=config)
    try:
        bounds = nowcast.data_bounds(con)
        first = bounds[0] if first is None else first
        last = bounds[1] if last is None else last
        fast = nowcast.vintage_history(con, config, first, last)
        slow = nowcast.vintage_history_reference(con, config, first, last)
    finally:
        con.close()
    return config, fast, slow


def _same(fast: nowcast.VintageHistory, slow: nowcast.VintageHistory) -> None:
    keys = set(fast.values) | set(slow.values)
    for key in keys:
        for vintage in range(fast.first, fast.last + 1):
            assert fast.at(*key, vintage) == slow.at(*key, vintage), (key, vintage)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return generated_warehouse(
        tmp_path_factory.mktemp("nowcast-fast"),
        start="2024-01-01",
        end="2024-12-31",
        weekly_starts=12,
        seed=3,
    )


def test_generated_exports_same_nowcast_and_budget_documents(generated):
    """The whole documents of `nowcast` and `budget` (as of the last month, and as of a past
    date), and the reporting triangle, are equal from both paths."""
    config, fast, slow = _histories(generated)
    _same(fast, slow)
    assert nowcast.triangle_rows(fast) == nowcast.triangle_rows(slow)
    for as_of in (nowcast.month_end(fast.last), dt.date(2024, 9, 30), dt.date(2024, 10, 17)):
        assert nowcast.nowcast_document(fast, as_of, config) == nowcast.nowcast_document(
            slow, as_of, config
        )
        assert nowcast.budget_document(fast, 2024, as_of, config) == nowcast.budget_document(
            slow, 2024, as_of, config
        )


def test_generated_exports_up_to_a_past_vintage(generated):
    """Vintages cut before the last month (what `--as-of` asks): the same figures."""
    _, fast, slow = _histories(generated, last=nowcast.month_index("2024-08"))
    assert fast.last == nowcast.month_index("2024-08")
    _same(fast, slow)


def test_a_past_vintage_is_the_whole_history_cut(generated):
    """The dashboard computes the history once per snapshot and cuts it for an earlier as-of
    date (VintageHistory.up_to): the figures of a pass of the views up to that vintage, month
    by month, and the same nowcast document. The cut keeps no figure of a later vintage."""
    config = load_config()
    con = connect(generated, read_only=True, config=config)
    try:
        first, last = nowcast.data_bounds(con)
        whole = nowcast.vintage_history(con, config, first, last)
        for month in ("2024-03", "2024-08", "2024-11"):
            upto = nowcast.month_index(month)
            cut = whole.up_to(upto)
            computed = nowcast.vintage_history(con, config, first, upto)
            assert (cut.first, cut.last) == (computed.first, upto)
            assert cut.values == computed.values
            assert all(v <= upto for by in cut.values.values() for v in by)
            as_of = nowcast.month_end(upto) + dt.timedelta(days=9)
            assert nowcast.nowcast_document(cut, as_of, config) == nowcast.nowcast_document(
                computed, as_of, config
            )
    finally:
        con.close()


def test_hand_made_vintages_equal_the_reference_and_the_hand_figures(tmp_path):
    """tests/test_vintages.py's warehouse (a line known from its load's month, a correction
    billed two months later): March 2025 total starts known 2, 3, 2 at the vintages of March,
    April, May (its docstring), from both paths."""
    _, fast, slow = _histories(warehouse(tmp_path))
    _same(fast, slow)
    march = nowcast.month_index("2025-03")
    assert [fast.at(march, "total", "patients_initiated", march + k) for k in range(3)] == [
        2,
        3,
        2,
    ]


def test_a_line_billed_before_its_delivery_month(tmp_path):
    """E: initiation scheme 5 delivered 2025-04-08, billed 2025-03 (a billing month before the
    delivery month). At the vintage ending March (as of 2025-03-31) the line is known but
    delivered after the as-of date: not seen; at April's: 1 start in April. Reduction of E
    delivered 2025-04-20, billed 2025-04: 1 reduction step in April at April's vintage."""
    lines = [
        *LINES,
        line("E", "2025-04-08", INIT5, billing_month="2025-03"),
        line("E", "2025-04-20", RED30, billing_month="2025-04"),
    ]
    db = warehouse(tmp_path, lines)
    _, fast, slow = _histories(db)
    _same(fast, slow)
    march, april = nowcast.month_index("2025-03"), nowcast.month_index("2025-04")
    assert fast.at(april, "5", "patients_initiated", march) == 0
    assert fast.at(april, "5", "patients_initiated", april) == 1
    assert fast.at(april, "5", "reduction_steps_delivered", april) == 1
