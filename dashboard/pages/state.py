"""State of play (home): the monthly state of play per scheme (SPEC §6), read from the mart.

Cards per scheme and total with the change on the previous month, the monthly initiations since
the pilot's start (pilot and structural phase marked, provisional months shaded), the full §6
table with the unassigned events beside it, and downloads of that table (CSV, Excel).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from dashboard.app import warehouse
from dashboard.ui import (
    PROVISIONAL_SHADE,
    SCHEME_COLOURS,
    SCHEMES,
    SCHEMES_AND_TOTAL,
    empty_page,
    figure_layout,
    page_title,
    publication_note,
    query_params,
    scheme_label,
    search_with,
    view_state,
)
from etl import figures
from etl.base.disclosure import Line
from etl.base.i18n import fmt_eur, fmt_int, fmt_month, t
from etl.base.registry import load_registry
from etl.exports import DownloadHeader, download_csv, download_xlsx
from etl.outputs.pack import render_pack

dash.register_page(__name__, path="/", name="state_of_play", order=0)

CARD_METRICS = (
    "patients_initiated",
    "patients_initiated_cumulative",
    "active_programmes_end_of_month",
    "programmes_completed",
    "programmes_stopped",
)


def layout(month: str | None = None, **params):
    state = view_state(params)
    lang = state.lang
    wh = warehouse()
    data = wh.reader(state.as_of)
    every = figures.state_of_play_rows(data)
    if not every:
        return empty_page(state, id_prefix="state")
    months, month = _chosen_month(every, month)
    previous = _previous_month(month)
    rows = {r["scheme"]: r for r in every if r["month"] == month}
    before = {r["scheme"]: r for r in every if r["month"] == previous}
    disclosure = state.disclosure(wh.config.suppression_threshold)
    doc = _document(data, every, month, disclosure)
    # The cards show the document's figures (SPEC §9 applied to the month as a whole).
    before_doc = _document(data, every, previous, disclosure) if before else None
    first = rows["total"]
    title = f"{t('state_of_play', lang)} — {fmt_month(month, lang)}"
    badge = (
        html.Span(t("provisional", lang), className="badge provisional", id="state-provisional")
        if first["is_provisional"]
        else None
    )
    return html.Div(
        [
            page_title(title, state, first["as_of_date"], id_prefix="state"),
            publication_note(state, wh.config.suppression_threshold, id_prefix="state"),
            html.Div(
                [
                    html.Label(t("state_month", lang), htmlFor="state-month-picker"),
                    dcc.Dropdown(
                        id="state-month-picker",
                        options=[{"label": fmt_month(m, lang), "value": m} for m in months],
                        value=month,
                        clearable=False,
                        style={"width": "14rem"},
                    ),
                    badge,
                ],
                className="controls-row",
            ),
            _cards(doc, before_doc, lang),
            html.Div(
                [
                    html.H3(t("state_trend_title", lang)),
                    dcc.Graph(
                        id="state-trend",
                        figure=_trend(every, disclosure, wh.config, lang),
                        config={"displaylogo": False},
                    ),
                ],
                className="section",
            ),
            html.Div(
                [
                    html.H3(t("state_table_title", lang)),
                    _table(doc, lang),
                    html.Div(
                        [
                            html.Button(t("download_csv", lang), id="state-download-csv-button"),
                            html.Button(t("download_xlsx", lang), id="state-download-xlsx-button"),
                        ],
                        className="downloads",
                        style={"marginTop": "0.8rem"},
                    ),
                    dcc.Download(id="state-download"),
                ],
                className="section",
            ),
            html.Div(
                [
                    html.H3(t("state_pack", lang)),
                    html.P(t("state_pack_note", lang), className="as-of-stamp"),
                    html.Div(
                        [
                            html.Button("Excel", id="state-pack-xlsx-button"),
                            html.Button("HTML", id="state-pack-html-button"),
                        ],
                        className="downloads",
                    ),
                    dcc.Download(id="state-pack-download"),
                ],
                className="section",
            ),
        ]
    )


def _previous_month(month: str) -> str:
    first = dt.date.fromisoformat(month + "-01")
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


def _cards(doc: dict, before: dict | None, lang: str):
    """Per scheme and the total, the card metrics of the month's state-of-play document and
    their change since the previous month's (when both are shown as numbers)."""
    registry = load_registry()
    cards = []
    for scheme in SCHEMES_AND_TOTAL:
        items = []
        for metric_id in CARD_METRICS:
            metric = registry.metric(metric_id)
            value = doc["schemes"][scheme][metric_id]
            prior = before["schemes"][scheme][metric_id] if before else None
            delta = ""
            if isinstance(value, int) and isinstance(prior, int):
                change = value - prior
                delta = ("+" if change > 0 else "") + fmt_int(change, lang) if change else "="
            items += [
                html.Dt(metric.label(lang)),
                html.Dd(fmt_int(value, lang), id=f"state-card-{scheme}-{metric_id}"),
                html.Dd(delta, className="delta", title=t("state_change", lang)),
            ]
        cards.append(
            html.Div(
                [html.H4(scheme_label(scheme, lang)), html.Dl(items)],
                className="card",
                id=f"state-card-{scheme}",
                style={"borderTopColor": SCHEME_COLOURS[scheme]},
            )
        )
    return html.Div(cards, className="cards", id="state-cards")


def _trend(every: list[dict], disclosure, config, lang: str) -> go.Figure:
    fig = go.Figure()
    months = sorted({r["month"] for r in every})
    by = {(r["month"], r["scheme"]): r for r in every}
    # SPEC §9: each month's schemes with their total (the table's total column), one line.
    line = Line(tuple(SCHEMES), "total")
    shown = {
        m: disclosure.table(
            {s: by[(m, s)]["patients_initiated"] for s in (*SCHEMES, "total")}, [line]
        )
        for m in months
    }
    for scheme in SCHEMES:
        values = [shown[m][scheme] for m in months]
        fig.add_bar(
            x=[m + "-01" for m in months],
            y=[v if isinstance(v, int) else None for v in values],
            name=scheme_label(scheme, lang),
            marker_color=SCHEME_COLOURS[scheme],
            customdata=[fmt_int(v, lang) for v in values],
            hovertemplate="%{x|%Y-%m}: %{customdata}<extra>"
            + scheme_label(scheme, lang)
            + "</extra>",
        )
    fig.update_layout(
        barmode="stack",
        legend_traceorder="normal",
        xaxis={"type": "date", "dtick": "M3", "tickformat": "%Y-%m"},
    )
    provisional = [m for m in months if by[(m, "total")]["is_provisional"]]
    if provisional:
        start = dt.date.fromisoformat(provisional[0] + "-01") - dt.timedelta(days=15)
        end = dt.date.fromisoformat(provisional[-1] + "-01") + dt.timedelta(days=15)
        fig.add_vrect(
            x0=start, x1=end, fillcolor=PROVISIONAL_SHADE, line_width=0, layer="below",
            annotation_text=t("provisional", lang), annotation_position="top left",
        )  # fmt: skip
    structural = config.structural_start - dt.timedelta(days=15)
    fig.add_vline(x=structural, line_dash="dash", line_color="#666")
    ymax = max(sum(by[(m, s)]["patients_initiated"] or 0 for s in SCHEMES) for m in months)
    for x, key, anchor in (
        (structural - dt.timedelta(days=20), "pilot_phase", "right"),
        (structural + dt.timedelta(days=20), "structural_phase", "left"),
    ):
        fig.add_annotation(
            x=x, y=ymax * 1.08, text=t(key, lang), showarrow=False, xanchor=anchor,
            font={"color": "#444"},
        )  # fmt: skip
    return figure_layout(fig, lang)


def _chosen_month(every: list[dict], month: str | None) -> tuple[list[str], str]:
    """The mart's months, latest first, and `month` if it is one of them, else the latest."""
    months = sorted({r["month"] for r in every}, reverse=True)
    return months, month if month in months else months[0]


def _document(data, every: list[dict], month: str, disclosure) -> dict:
    """The state of play of `month` (etl.figures: the document of `benzo-monitor report`),
    from the rows of every month already read."""
    return figures.state_of_play(data, month, disclosure, [r for r in every if r["month"] == month])


NOT_APPLICABLE = object()  # a metric the unassigned events do not have (e.g. patients)


def _shown(metric, value, lang: str) -> str:
    if value is NOT_APPLICABLE:
        return ""
    return fmt_eur(value, lang) if metric.disclosure == "amount" else fmt_int(value, lang)


def _table(doc: dict, lang: str):
    header = html.Tr(
        [html.Th("")]
        + [html.Th(scheme_label(s, lang)) for s in SCHEMES_AND_TOTAL]
        + [html.Th(t("unassigned", lang))]
    )
    body = [
        html.Tr(
            [
                html.Th(metric.label(lang), scope="row"),
                *(html.Td(_shown(metric, value, lang)) for value in cells),
            ]
        )
        for metric, cells in figures.state_of_play_table(doc, missing=NOT_APPLICABLE)
    ]
    return html.Table([html.Thead(header), html.Tbody(body)], id="state-table", className="figures")


def _download_table(search: str) -> tuple[str, DownloadHeader, list[str], list[list]]:
    """The §6 table of the URL's month as raw values: (month, header block, header, rows)."""
    params = query_params(search)
    state = view_state(params)
    wh = warehouse()
    data = wh.reader(state.as_of)
    every = figures.state_of_play_rows(data)
    if not every:
        raise PreventUpdate  # nothing loaded: the page offers no download
    _, month = _chosen_month(every, params.get("month"))
    disclosure = state.disclosure(wh.config.suppression_threshold)
    doc = _document(data, every, month, disclosure)
    header = [
        "metric",
        *(scheme_label(s, state.lang) for s in SCHEMES_AND_TOTAL),
        t("unassigned", state.lang),
    ]
    body = [
        [metric.label(state.lang), *(_amount(metric, v) for v in cells)]
        for metric, cells in figures.state_of_play_table(doc)
    ]
    block = DownloadHeader(
        lang=state.lang,
        as_of=dt.date.fromisoformat(doc["as_of"]),
        suppressed=disclosure.enabled,
        threshold=wh.config.suppression_threshold,
        month=month,
        provisional=doc["provisional"],
    )
    return month, block, header, body


def _amount(metric, value):
    """A euro amount with its two decimals (0 -> 0.00); any other cell unchanged."""
    if metric.disclosure == "amount" and isinstance(value, int | float | Decimal):
        return Decimal(str(value)).quantize(Decimal("0.01"))
    return value


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("state-month-picker", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def choose_month(month, search):
    if not month or query_params(search).get("month") == month:
        return dash.no_update
    return search_with(search, month=month)


@callback(
    Output("state-download", "data"),
    Input("state-download-csv-button", "n_clicks"),
    Input("state-download-xlsx-button", "n_clicks"),
    State("url", "search"),
    prevent_initial_call=True,
)
def download(_csv, _xlsx, search):
    month, block, header, body = _download_table(search)
    if dash.ctx.triggered_id == "state-download-csv-button":
        return {
            "content": download_csv(block, header, body),
            "filename": f"state-of-play-{month}.csv",
            "type": "text/csv",
        }
    return dcc.send_bytes(download_xlsx(block, month, header, body), f"state-of-play-{month}.xlsx")


@callback(
    Output("state-pack-download", "data"),
    Input("state-pack-xlsx-button", "n_clicks"),
    Input("state-pack-html-button", "n_clicks"),
    State("url", "search"),
    prevent_initial_call=True,
)
def download_pack(_xlsx, _html, search):
    """The report pack (etl/outputs/pack.py) of the URL's month, language, view and as-of date."""
    params = query_params(search)
    state = view_state(params)
    wh = warehouse()
    every = figures.state_of_play_rows(wh.reader(state.as_of))
    if not every:
        raise PreventUpdate  # nothing loaded: the page offers no pack
    _, month = _chosen_month(every, params.get("month"))
    fmt = "html" if dash.ctx.triggered_id == "state-pack-html-button" else "xlsx"
    disclosure = state.disclosure(wh.config.suppression_threshold)
    data = wh.with_cursor(
        lambda cursor: render_pack(
            cursor, month, state.lang, fmt, disclosure, as_of=state.as_of, config=wh.config
        )
    )
    return dcc.send_bytes(data, f"report-{month}-{state.lang}.{fmt}")
