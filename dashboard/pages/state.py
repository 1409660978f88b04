"""State of play (home): the monthly state of play per scheme (SPEC §6), read from the mart.

Cards per scheme and total with the change on the previous month, the monthly initiations since
the pilot's start (pilot and structural phase marked, provisional months shaded), the full §6
table with the unassigned events beside it, and downloads of that table (CSV, Excel).

SPEC §15: without a month in the URL the page opens on the latest month that is not
provisional. A provisional month is a nowcast band on the chart — the part known solid, the
expected remainder of the total hatched, its 80 % and 95 % prediction intervals as error bars —
and its cards say "provisional — expected X (Y–Z)" (etl.nowcast, through dashboard/actuarial.py).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import actuarial
from dashboard.app import warehouse
from dashboard.locale import graph_config
from dashboard.ui import (
    PROVISIONAL_SHADE,
    SCHEME_COLOURS,
    SCHEMES,
    SCHEMES_AND_TOTAL,
    chart,
    empty_page,
    figure_layout,
    mark_suppressed,
    page_title,
    publication_note,
    query_params,
    scheme_label,
    search_with,
    view_state,
)
from etl import figures
from etl.base.disclosure import Line
from etl.base.errors import UserError
from etl.base.i18n import fmt_eur, fmt_int, fmt_month, fmt_number, t
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
    casts = _nowcasts(wh, state)
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
            _cards(
                doc, before_doc, lang, _expected(casts, month) if first["is_provisional"] else None
            ),
            why_these_figures(lang),
            html.Div(
                [
                    html.H3(t("state_trend_title", lang)),
                    chart(
                        dcc.Graph(
                            id="state-trend",
                            figure=_trend(every, disclosure, wh.config, lang, casts),
                            config=graph_config(lang),
                        ),
                        t("a11y_chart_state_trend", lang),
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
                            html.Button("PDF", id="state-pack-pdf-button"),
                        ],
                        className="downloads",
                    ),
                    html.P(id="state-pack-message", className="as-of-stamp", role="status"),
                    dcc.Download(id="state-pack-download"),
                ],
                className="section",
            ),
        ]
    )


def _previous_month(month: str) -> str:
    first = dt.date.fromisoformat(month + "-01")
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


def _cards(doc: dict, before: dict | None, lang: str, expected: dict[str, dict] | None = None):
    """Per scheme and the total, the card metrics of the month's state-of-play document and
    their change since the previous month's (when both are shown as numbers); for a
    provisional month (`expected`: its nowcast rows by scheme), where patients initiated are
    expected to land."""
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
            if expected is not None and metric_id == "patients_initiated":
                items.append(_expected_card(expected.get(scheme), scheme, lang))
        cards.append(
            html.Div(
                [html.H4(scheme_label(scheme, lang)), html.Dl(items)],
                className="card",
                id=f"state-card-{scheme}",
                style={"borderTopColor": SCHEME_COLOURS[scheme]},
            )
        )
    return html.Div(cards, className="cards", id="state-cards")


def why_these_figures(lang: str):
    """Beside the cards, why each of their figures matters, in plain words (the registry's
    `why` of each card metric, as OpenPrescribing gives a "why it matters" per measure)."""
    registry = load_registry()
    items = []
    for metric_id in CARD_METRICS:
        metric = registry.metric(metric_id)
        items += [
            html.Dt(metric.label(lang)),
            html.Dd(metric.text("why", lang), id=f"state-why-{metric_id}"),
        ]
    return html.Details(
        [html.Summary(t("state_why_title", lang)), html.Dl(items, className="why")],
        id="state-why",
        className="section why",
        open=True,
    )


def _trend(
    every: list[dict], disclosure, config, lang: str, casts: dict | None = None
) -> go.Figure:
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
    marked = {}
    for scheme in SCHEMES:
        values = [shown[m][scheme] for m in months]
        marked[scheme_label(scheme, lang)] = values
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
    mark_suppressed(fig, [m + "-01" for m in months], marked, lang)
    fig.update_layout(
        barmode="stack",
        legend_traceorder="normal",
        xaxis={"type": "date", "dtick": "M3", "tickformat": "%Y-%m"},
        yaxis={"title": t("a11y_axis_patients_initiated", lang)},
    )
    provisional = [m for m in months if by[(m, "total")]["is_provisional"]]
    _nowcast_band(fig, provisional, shown, casts or {}, lang)
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
    """The mart's months, latest first, and `month` if it is one of them, else the latest
    month that is not provisional (SPEC §15: a provisional month is not final; it stays
    reachable by choosing it), else the latest."""
    months = sorted({r["month"] for r in every}, reverse=True)
    if month in months:
        return months, month
    final = {r["month"] for r in every if r["scheme"] == "total" and not r["is_provisional"]}
    return months, next((m for m in months if m in final), months[0])


def _document(data, every: list[dict], month: str, disclosure) -> dict:
    """The state of play of `month` (etl.figures: the document of `benzo-monitor report`),
    from the rows of every month already read."""
    return figures.state_of_play(data, month, disclosure, [r for r in every if r["month"] == month])


# --- provisional months: the nowcast (SPEC §15, etl.nowcast via dashboard/actuarial.py) ---------

PATIENTS = "patients_initiated"
# The page does not wait for a nowcast still being computed (the first request of a snapshot
# starts it): until it is there, provisional months are shaded and marked "provisional".
NOWCAST_WAIT = 3.0
EXPECTED_COLOUR = SCHEME_COLOURS["total"]


def _nowcasts(wh, state) -> dict[tuple, dict]:
    """The nowcast rows of the provisional months by (month, metric, scheme), after SPEC §9 in
    the publication view (as every export: a masked count has no nowcast); none while the
    nowcast is still being computed."""
    threshold = wh.config.suppression_threshold if state.publication else None
    return actuarial.nowcasts(actuarial.review(wh, state.as_of, wait=NOWCAST_WAIT), threshold)


def _expected(casts: dict[tuple, dict], month: str) -> dict[str, dict]:
    """The nowcast rows of patients initiated in `month`, by scheme."""
    return {
        s: casts[(month, PATIENTS, s)] for s in SCHEMES_AND_TOTAL if (month, PATIENTS, s) in casts
    }


def _expected_card(row: dict | None, scheme: str, lang: str):
    """ "provisional — expected X (Y–Z)" (the 95 % interval) under a provisional month's
    patients initiated, or "provisional" alone for a month without a nowcast."""
    if row is None or row["nowcast"] is None:
        text = t("provisional", lang)
    elif row["lower_95"] is None:
        text = t("state_expected", lang, x=fmt_number(row["nowcast"], lang, 0))
    else:
        text = t(
            "state_expected_interval",
            lang,
            x=fmt_number(row["nowcast"], lang, 0),
            lower=fmt_number(row["lower_95"], lang, 0),
            upper=fmt_number(row["upper_95"], lang, 0),
        )
    return html.Dd(
        text,
        id=f"state-card-{scheme}-expected",
        className="expected",
        title=t("state_expected_note", lang),
    )


def _nowcast_band(fig: go.Figure, provisional: list[str], shown: dict, casts: dict, lang: str):
    """On the stacked bars of the provisional months: the expected remainder of the total
    (its nowcast minus the schemes shown), hatched, and the 80 % and 95 % prediction
    intervals of the total as error bars around the nowcast."""
    band = []
    for month in provisional:
        row = casts.get((month, PATIENTS, "total"))
        if row is None or row["nowcast"] is None:
            continue
        known = sum(v for s in SCHEMES if isinstance(v := shown[month][s], int))
        band.append((month, known, row))
    if not band:
        return
    x = [m + "-01" for m, _, _ in band]
    expected = [fmt_number(r["nowcast"], lang, 0) for _, _, r in band]
    fig.add_bar(
        x=x,
        y=[max(r["nowcast"] - known, 0) for _, known, r in band],
        name=t("state_expected_remainder", lang),
        marker={"color": "rgba(0,0,0,0)", "line": {"color": EXPECTED_COLOUR, "width": 1}},
        marker_pattern={"shape": "/", "fgcolor": EXPECTED_COLOUR, "solidity": 0.3},
        customdata=expected,
        hovertemplate="%{x|%Y-%m}: %{customdata}<extra>"
        + t("state_expected_total", lang)
        + "</extra>",
    )
    for level, width in ((95, 1.5), (80, 4)):
        rows = [r for _, _, r in band]
        if all(r[f"lower_{level}"] is None for r in rows):
            continue
        fig.add_scatter(
            x=x,
            y=[r["nowcast"] for r in rows],
            mode="markers",
            name=t(f"state_interval_{level}", lang),
            marker={"color": EXPECTED_COLOUR, "size": 5 if level == 80 else 1},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [_gap(r[f"upper_{level}"], r["nowcast"]) for r in rows],
                "arrayminus": [_gap(r["nowcast"], r[f"lower_{level}"]) for r in rows],
                "thickness": width,
                "width": 0 if level == 80 else 6,
                "color": EXPECTED_COLOUR,
            },
            customdata=[
                f"{fmt_number(r[f'lower_{level}'], lang, 0)}–{fmt_number(r[f'upper_{level}'], lang, 0)}"
                for r in rows
            ],
            hovertemplate="%{x|%Y-%m}: %{customdata}<extra>"
            + t(f"state_interval_{level}", lang)
            + "</extra>",
        )


def _gap(high, low) -> float | None:
    return None if high is None or low is None else high - low


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
    table = html.Table(
        [html.Thead(header), html.Tbody(body)], id="state-table", className="figures"
    )
    return html.Div(table, className="table-scroll")  # sideways on a phone (assets/style.css)


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


PACK_BUTTONS = {
    "state-pack-xlsx-button": "xlsx",
    "state-pack-html-button": "html",
    "state-pack-pdf-button": "pdf",
}


@callback(
    Output("state-pack-download", "data"),
    Output("state-pack-message", "children"),
    Input("state-pack-xlsx-button", "n_clicks"),
    Input("state-pack-html-button", "n_clicks"),
    Input("state-pack-pdf-button", "n_clicks"),
    State("url", "search"),
    prevent_initial_call=True,
)
def download_pack(_xlsx, _html, _pdf, search):
    """The report pack (etl/outputs/pack.py) of the URL's month, language, view and as-of date,
    as Excel, HTML or PDF (printed by Chromium; without it, a plain message and no file). The
    publication view gets the pack under disclosure control (SPEC §9)."""
    params = query_params(search)
    state = view_state(params)
    wh = warehouse()
    every = figures.state_of_play_rows(wh.reader(state.as_of))
    if not every:
        raise PreventUpdate  # nothing loaded: the page offers no pack
    _, month = _chosen_month(every, params.get("month"))
    fmt = PACK_BUTTONS.get(dash.ctx.triggered_id, "xlsx")
    disclosure = state.disclosure(wh.config.suppression_threshold)
    try:
        data = wh.with_cursor(
            lambda cursor: render_pack(
                cursor, month, state.lang, fmt, disclosure, as_of=state.as_of, config=wh.config
            )
        )
    except UserError:  # no Chromium for the PDF
        return dash.no_update, t("pack_pdf_no_chromium", state.lang)
    return dcc.send_bytes(data, f"report-{month}-{state.lang}.{fmt}"), ""
