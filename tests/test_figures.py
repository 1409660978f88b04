"""etl/figures.py on a tiny warehouse: fees per CNK with their total, worked out by hand, and
the same documents whichever reader asks (the command line's or the dashboard's)."""

from __future__ import annotations

import pytest

from dashboard.app import create_app, warehouse
from etl import figures
from etl.base.codes import FEE_CODES
from etl.base.config import load_config
from etl.base.disclosure import Disclosure
from etl.outputs.report import open_for_export, open_warehouse, set_report_month
from tests.conftest import CANONICAL_HEADER, write_delimited

# One 5-step initiation and two 30-capsule reduction steps, March 2025, P = 2.2193 (default):
# initiation round(2.2193 x 10.47, 2) = 23.24; a step round(2.2193 x 7.08, 2) = 15.71;
# 23.24 + 2 x 15.71 = 54.66. The export bills 23.24 + 15.71 + 15.00 = 53.95: difference -0.71.
ROWS = [
    ["PATQ7", "PHX42", "03/03/2025", "5521950", "1", "23,24"],
    ["PATQ7", "PHX42", "03/03/2025", "5522008", "1", "15,71"],
    ["PATQ7", "PHX42", "31/03/2025", "5522008", "1", "15,00"],
]


@pytest.fixture
def tiny(cli, db, tmp_path):
    export = write_delimited(tmp_path / "export.csv", CANONICAL_HEADER, ROWS)
    assert cli("--db", db, "load", "--no-progress", export)[0] == 0
    return db


@pytest.fixture
def reader(tiny):
    """The command line's reader: the warehouse's views on a plain connection."""
    con = open_for_export(tiny, load_config(), None, "2025-03")
    yield figures.ConnectionReader(con)
    con.close()


def test_fees_per_cnk_in_fee_code_order_then_the_total(reader):
    rows = figures.fees_by_cnk(reader, "2025-03", "2025-03")
    assert [r["cnk"] for r in rows] == [code.cnk for code in FEE_CODES] + [None]
    by_cnk = {r["cnk"]: r for r in rows}
    fees = {cnk: (r["n_events"], float(r["fees_estimated_eur"])) for cnk, r in by_cnk.items()}
    assert fees["5521950"] == (1, 23.24)
    assert fees["5522008"] == (2, 31.42)
    assert fees["5521984"] == (0, 0.0)
    total = by_cnk[None]
    assert total["n_events"] == 3
    assert float(total["fees_estimated_eur"]) == 54.66
    assert float(total["amount_billed_eur"]) == 53.95
    assert float(total["difference_eur"]) == -0.71


def test_an_empty_period_counts_nothing(reader):
    (total,) = figures.fees_by_cnk(reader, "2030-01", "2030-02")
    assert (total["cnk"], total["n_events"], total["fees_estimated_eur"]) == (None, 0, 0)
    assert total["amount_billed_eur"] is None


def test_the_dashboard_reads_the_same_documents(tiny):
    """The dashboard reads the published snapshot; the views, computed afresh, agree."""
    app = create_app(tiny)  # publishes the snapshot the dashboard reads
    disclosure = Disclosure(5, enabled=True)
    con = open_warehouse(tiny, load_config(), None)
    set_report_month(con, "2025-03")
    reader = figures.ConnectionReader(con)
    with app.server.test_request_context():
        snapshot = warehouse().reader()
        assert figures.state_of_play(snapshot, "2025-03", disclosure) == figures.state_of_play(
            reader, "2025-03", disclosure
        )
        assert figures.compliance_counts(snapshot) == figures.compliance_counts(reader)
        assert figures.fees_by_cnk(snapshot, "2025-03", "2025-03") == figures.fees_by_cnk(
            reader, "2025-03", "2025-03"
        )
    con.close()


def test_marts_are_named_by_placeholders():
    sql = "select * from {mart_cohorts} order by scheme"
    assert figures.resolve_marts(sql) == "select * from mart_cohorts order by scheme"
    assert figures.resolve_marts(sql, "published") == (
        "select * from published.mart_cohorts order by scheme"
    )
    with pytest.raises(KeyError):
        figures.resolve_marts("select * from {loads}")
