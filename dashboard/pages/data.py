"""Data page: the load ledger and the rejected rows by reason."""

from __future__ import annotations

import dash
import dash_ag_grid as dag
from dash import html

from dashboard.app import warehouse
from dashboard.i18n import language, t

dash.register_page(__name__, path="/data", name="data", order=90)


def layout(lang: str | None = None, **_):
    lang = language(lang)
    wh = warehouse()
    if wh.snapshot() is None:
        return html.P(t("no_data", lang), id="data-empty")
    ledger = wh.rows(
        "select load_id, file_name, file_format, rows_read, rows_new, rows_present, "
        "rows_skipped, rows_rejected, finished_at::varchar as finished_at, file_sha256 "
        "from loads order by load_id desc"
    )
    reasons = wh.rows(
        "select reason, count(*) as n_rows from rejects group by reason order by n_rows desc"
    )
    return html.Div(
        [
            html.H2(t("load_ledger", lang)),
            dag.AgGrid(
                id="data-ledger",
                rowData=ledger,
                columnDefs=[{"field": k} for k in (ledger[0] if ledger else {"load_id": 0})],
                style={"height": "320px"},
            ),
            html.H2(t("rejects_by_reason", lang)),
            dag.AgGrid(
                id="data-rejects",
                rowData=reasons,
                columnDefs=[{"field": "reason"}, {"field": "n_rows"}],
                style={"height": "260px"},
            ),
        ]
    )
