"""Fees: events and estimated fees per fee code (CNK) and month (SPEC §2), read from the mart.

A period in the URL (`period=ytd|12m|all`: the year to date, the last 12 months, every month up
to the as-of month), a stacked monthly chart of the estimated fees by kind of service, a table
per CNK with the amounts billed beside the estimate when the export carries amounts, the
monthly detail, and the key-letter value P and the coefficients in force (configuration).
Fees are amounts, never suppressed; event counts are counts, suppressed in the publication view.
"""

from __future__ import annotations

import datetime as dt
import tomllib

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html

from dashboard.app import warehouse
from dashboard.locale import graph_config
from dashboard.ui import (
    EXTRA_COLOURS,
    PROVISIONAL_SHADE,
    bar_pattern,
    chart,
    empty_page,
    figure_layout,
    grid,
    json_safe,
    page_title,
    publication_note,
    query_params,
    search_with,
    view_state,
)
from etl import figures
from etl.base.codes import BY_CNK, FEE_CODES, KINDS
from etl.base.config import DEFAULTS_PATH
from etl.base.i18n import fmt_date, fmt_eur, fmt_int, fmt_month, fmt_number, t

dash.register_page(__name__, path="/fees", name="fees", order=20)

PERIODS = ("ytd", "12m", "all")
# Not schemes: four distinct Okabe–Ito colours outside the scheme colours.
KIND_COLOURS = {
    "initiation": EXTRA_COLOURS[0],  # blue
    "reduction": EXTRA_COLOURS[1],  # vermillion
    "stabilisation": EXTRA_COLOURS[2],  # ochre
    "follow_up": EXTRA_COLOURS[3],  # reddish purple
}
# Vermillion and ochre are one grey: each kind also has its own hatching.
KIND_PATTERNS = {"initiation": "", "reduction": "/", "stabilisation": ".", "follow_up": "x"}
BILLED_COLOUR = EXTRA_COLOURS[4]  # black


def layout(period: str | None = None, **params):
    state = view_state(params)
    lang = state.lang
    wh = warehouse()
    data = wh.reader(state.as_of)
    bounds = figures.fees_bounds(data)
    if bounds is None:
        return empty_page(state, id_prefix="fees")
    first_month, last_month, has_amounts = (
        bounds["first_month"],
        bounds["last_month"],
        bounds["has_amounts"],
    )
    period = period if period in PERIODS else PERIODS[0]
    start, end = period_months(period, first_month, last_month)
    by_cnk = figures.fees_by_cnk(data, start, end)
    by_month = figures.fees_by_month(data, start, end)
    detail = figures.fees_detail(data, start, end)
    disclosure = state.disclosure(wh.config.suppression_threshold)
    as_of = state.as_of or wh.default_as_of()
    span = f"{fmt_month(start, lang)} – {fmt_month(end, lang)}"
    return html.Div(
        [
            page_title(f"{t('fees', lang)} — {span}", state, as_of, id_prefix="fees"),
            publication_note(state, wh.config.suppression_threshold, id_prefix="fees"),
            html.Div(
                [
                    html.Label(t("fees_period", lang), htmlFor="fees-period"),
                    dcc.RadioItems(
                        id="fees-period",
                        options=[
                            {"label": t(f"fees_period_{p}", lang), "value": p} for p in PERIODS
                        ],
                        value=period,
                        inline=True,
                        inputStyle={"marginRight": "0.3rem"},
                        labelStyle={"marginRight": "1rem"},
                    ),
                ],
                className="controls-row",
            ),
            html.Div(
                [
                    html.H3(t("fees_chart_title", lang)),
                    chart(
                        dcc.Graph(
                            id="fees-chart",
                            figure=_chart(by_month, has_amounts, lang),
                            config=graph_config(lang),
                        ),
                        t("a11y_chart_fees", lang),
                    ),
                ],
                className="section",
            ),
            html.Div(
                [
                    html.H3(t("fees_table_title", lang)),
                    None
                    if has_amounts
                    else html.P(t("fees_no_amounts", lang), id="fees-no-amounts"),
                    _table(by_cnk, has_amounts, disclosure, lang),
                    html.P(
                        t("fees_scope_note", lang),
                        className="as-of-stamp",
                        style={"marginTop": "0.5rem"},
                    ),
                ],
                className="section",
            ),
            _configuration(wh.config, lang),
            html.Div(
                [
                    html.H3(t("fees_monthly_title", lang)),
                    _detail_grid(detail, has_amounts, disclosure, lang),
                ],
                className="section",
            ),
        ]
    )


def period_months(period: str, first_month: str, last_month: str) -> tuple[str, str]:
    """The first and last month (YYYY-MM) of `period`, ending with the as-of month."""
    year, month = map(int, last_month.split("-"))
    if period == "ytd":
        start = f"{year:04d}-01"
    elif period == "12m":
        index = year * 12 + month - 1 - 11
        start = f"{index // 12:04d}-{index % 12 + 1:02d}"
    else:
        start = first_month
    return max(start, first_month), last_month


def cnk_label(cnk: str, lang: str) -> str:
    """The fee code's description in the reader's language (etl/base/codes.py)."""
    code = BY_CNK.get(cnk)
    return getattr(code, f"label_{lang}") if code else cnk


def _chart(by_month: list[dict], has_amounts: bool, lang: str) -> go.Figure:
    fig = go.Figure()
    months = [r["month"] for r in by_month if r["kind"] is None]
    fees = {(r["month"], r["kind"]): r["fees_estimated_eur"] for r in by_month}
    x = [m + "-01" for m in months]
    for kind in KINDS:
        values = [fees.get((m, kind)) for m in months]
        name = t(f"fees_kind_{kind}", lang)
        fig.add_bar(
            x=x,
            y=[float(v) if v is not None else None for v in values],
            name=name,
            marker_color=KIND_COLOURS[kind],
            marker_pattern=bar_pattern(KIND_PATTERNS[kind]),
            customdata=[fmt_eur(v, lang) for v in values],
            hovertemplate="%{x|%Y-%m}: %{customdata}<extra>" + name + "</extra>",
        )
    if has_amounts:
        totals = {r["month"]: r for r in by_month if r["kind"] is None}
        billed = [totals[m]["amount_billed_eur"] for m in months]
        name = t("fees_col_billed", lang)
        fig.add_scatter(
            x=x,
            y=[float(v) if v is not None else None for v in billed],
            name=name,
            mode="lines+markers",
            line={"color": BILLED_COLOUR, "width": 2},
            marker={"color": BILLED_COLOUR, "size": 6},
            customdata=[fmt_eur(v, lang) for v in billed],
            hovertemplate="%{x|%Y-%m}: %{customdata}<extra>" + name + "</extra>",
        )
    fig.update_layout(
        barmode="stack",
        legend={"traceorder": "normal"},
        xaxis={"type": "date", "tickformat": "%Y-%m", "dtick": "M1" if len(months) <= 14 else "M3"},
        yaxis={"title": {"text": "€"}},
    )
    provisional = [r["month"] for r in by_month if r["kind"] is None and r["is_provisional"]]
    if provisional:
        start = dt.date.fromisoformat(provisional[0] + "-01") - dt.timedelta(days=15)
        end = dt.date.fromisoformat(provisional[-1] + "-01") + dt.timedelta(days=15)
        fig.add_vrect(
            x0=start, x1=end, fillcolor=PROVISIONAL_SHADE, line_width=0, layer="below",
            annotation_text=t("provisional", lang), annotation_position="top left",
        )  # fmt: skip
    return figure_layout(fig, lang)


def _table(by_cnk: list[dict], has_amounts: bool, disclosure, lang: str):
    rows = {r["cnk"]: r for r in by_cnk}
    header = [
        html.Th("CNK", style={"textAlign": "left"}),
        html.Th(t("fees_col_label", lang), style={"textAlign": "left"}),
        html.Th(t("fees_col_events", lang)),
        html.Th(t("fees_col_estimated", lang)),
    ]
    if has_amounts:
        header += [html.Th(t("fees_col_billed", lang)), html.Th(t("fees_col_difference", lang))]
    body = []
    for key, cnk, label in [
        *((c.cnk, c.cnk, cnk_label(c.cnk, lang)) for c in FEE_CODES),
        ("total", "", t("scheme_total", lang)),
    ]:
        row = rows.get(cnk or None, {})
        events = disclosure.count(row.get("n_events", 0))
        cells = [
            html.Td(fmt_int(events, lang), id=f"fees-cnk-{key}-events"),
            html.Td(
                fmt_eur(row.get("fees_estimated_eur", 0), lang), id=f"fees-cnk-{key}-estimated"
            ),
        ]
        if has_amounts:
            cells += [
                html.Td(fmt_eur(row.get("amount_billed_eur"), lang), id=f"fees-cnk-{key}-billed"),
                html.Td(fmt_eur(row.get("difference_eur"), lang), id=f"fees-cnk-{key}-difference"),
            ]
        style = {"fontWeight": 600} if key == "total" else None
        body.append(
            html.Tr(
                [
                    html.Th(cnk, scope="row"),
                    html.Th(label, scope="row"),
                    *cells,
                ],
                style=style,
            )
        )
    return html.Table(
        [html.Thead(html.Tr(header)), html.Tbody(body)], id="fees-table", className="figures"
    )


def _default_key_letter_values() -> set[tuple[dt.date, float]]:
    """The P table shipped in etl/base/config.toml: an estimate until the official value is set."""
    with DEFAULTS_PATH.open("rb") as fh:
        rows = tomllib.load(fh).get("fees", {}).get("key_letter_values", [])
    return {(row["valid_from"], float(row["value"])) for row in rows}


def _configuration(config, lang: str):
    defaults = _default_key_letter_values()
    p_rows = []
    for i, kv in enumerate(config.key_letter_values):
        estimated = (kv.valid_from, float(kv.value)) in defaults
        p_rows.append(
            html.Tr(
                [
                    html.Th(fmt_date(kv.valid_from, lang), scope="row"),
                    html.Td(fmt_number(kv.value, lang, 4), id=f"fees-p-{i}"),
                    html.Td(
                        f"({t('fees_p_estimated', lang)})" if estimated else "",
                        className="as-of-stamp",
                        style={"textAlign": "left"},
                    ),
                ]
            )
        )
    p_table = html.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th(t("fees_valid_from", lang), style={"textAlign": "left"}),
                        html.Th(t("fees_p_value", lang)),
                        html.Th(""),
                    ]
                )
            ),
            html.Tbody(p_rows),
        ],
        id="fees-p-table",
        className="figures",
    )
    coefficients = html.Table(
        [
            html.Thead(html.Tr([html.Th(""), html.Th(t("fees_coefficient", lang))])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Th(t("fees_coef_interview", lang), scope="row"),
                            html.Td(
                                fmt_number(config.interview_coefficient, lang, 2),
                                id="fees-coefficient-interview",
                            ),
                        ]
                    ),
                    html.Tr(
                        [
                            html.Th(t("fees_coef_preparation", lang), scope="row"),
                            html.Td(
                                fmt_number(config.preparation_coefficient, lang, 2),
                                id="fees-coefficient-preparation",
                            ),
                        ]
                    ),
                ]
            ),
        ],
        id="fees-coefficients",
        className="figures",
    )
    return html.Div(
        [
            html.H3(t("fees_config_title", lang)),
            html.Div(
                [
                    html.Div([p_table, html.P(t("fees_p_note", lang), id="fees-p-note")]),
                    html.Div(
                        [
                            coefficients,
                            html.P(t("fees_coefficient_note", lang), id="fees-coefficient-note"),
                        ]
                    ),
                ],
                style={"display": "grid", "gridTemplateColumns": "1fr 1fr", "gap": "1.5rem"},
            ),
        ],
        className="section",
        id="fees-configuration",
    )


def _detail_grid(detail: list[dict], has_amounts: bool, disclosure, lang: str):
    rows = [
        {
            **row,
            "label": cnk_label(row["cnk"], lang),
            "n_events": disclosure.count(row["n_events"]),
        }
        for row in json_safe(detail)
    ]
    columns = [
        {"field": "month", "headerName": t("month", lang)},
        {"field": "cnk", "headerName": "CNK"},
        {"field": "label", "headerName": t("fees_col_label", lang)},
        {"field": "n_events", "headerName": t("fees_col_events", lang), "kind": "int"},
        {"field": "fees_estimated_eur", "headerName": t("fees_col_estimated", lang), "kind": "eur"},
    ]
    if has_amounts:
        columns.append(
            {"field": "amount_billed_eur", "headerName": t("fees_col_billed", lang), "kind": "eur"}
        )
    return grid("fees-detail", rows, columns, lang, height=360, page_size=50)


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("fees-period", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def choose_period(period, search):
    current = query_params(search).get("period") or PERIODS[0]
    if not period or period == current:
        return dash.no_update
    return search_with(search, period=None if period == PERIODS[0] else period)
