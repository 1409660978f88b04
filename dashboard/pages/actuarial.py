"""Actuarial review (SPEC §15): how the provisional months will end, and the budget.

The figure and scheme in the URL (`metric`, `scheme`), the nowcast of each provisional month
with its 80 % and 95 % prediction intervals, the reporting triangle as a heat map (delivery month
x lag), the completion factors, the backtest of the nowcast, and the year's cumulative fees
against the annual budget with the year-end projection's fan (`year`). Every figure comes from
etl.nowcast through dashboard/actuarial.py, computed once per published snapshot.

Publication view (SPEC §9): the nowcasts as `benzo-monitor nowcast` exports them
(etl.nowcast.disclose_nowcast: a known count from 1 to threshold - 1 masked with its nowcast,
complementary masking between schemes, fees hidden next to a masked count) and the backtest —
median errors and interval coverages over many months, not counts of people. The triangle's
cells are differences between the figures known at two vintages: a cell masked under the
threshold would come back by subtracting the two (unmasked) figures known, which §9's rules,
made for one table at one date, do not cover; and §9.4 hides fees with the counts they sum. So
the triangle, the completion factors and the budget are for the analysts' view.
"""

from __future__ import annotations

import textwrap

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html

from dashboard import actuarial
from dashboard.app import warehouse
from dashboard.locale import graph_config
from dashboard.ui import (
    EXTRA_COLOURS,
    SCHEME_COLOURS,
    SCHEMES_AND_TOTAL,
    empty_page,
    figure_layout,
    page_title,
    query_params,
    scheme_label,
    search_with,
    view_state,
)
from etl import nowcast
from etl.base.i18n import fmt_eur, fmt_int, fmt_month, fmt_number, fmt_rate, t
from etl.base.registry import load_registry

dash.register_page(__name__, path="/actuarial", name="actuarial", order=25)

METRICS = nowcast.METRICS
FEES = "fees_estimated_eur"
BILLED_COLOUR = EXTRA_COLOURS[0]  # blue
DELIVERY_COLOUR = EXTRA_COLOURS[1]  # vermillion
FAN = {80: "rgba(213, 94, 0, 0.30)", 95: "rgba(213, 94, 0, 0.14)"}


PAGE_WAIT = 8.0  # seconds the page waits for the review before it shows "being computed"
POLL_MS = 4000


LEGEND_LINE = 36  # characters a legend line holds on a phone's screen


def layout(metric: str | None = None, scheme: str | None = None, year: str | None = None, **params):
    state = view_state(params)
    wh = warehouse()
    found = actuarial.review(wh, state.as_of, wait=PAGE_WAIT)
    if found is None:
        return empty_page(state, id_prefix="actuarial")
    if found is actuarial.PENDING:
        content = [
            page_title(
                t("actuarial", state.lang), state, wh.default_as_of(), id_prefix="actuarial"
            ),
            html.P(t("actuarial_pending", state.lang), id="actuarial-pending"),
            dcc.Interval(id="actuarial-poll", interval=POLL_MS),
        ]
    else:
        content = _content(wh, state, found, metric, scheme, year)
    return html.Div(content, id="actuarial-page")


def _content(wh, state, found, metric, scheme, year) -> list:
    lang = state.lang
    metric = metric if metric in METRICS else METRICS[0]
    scheme = scheme if scheme in SCHEMES_AND_TOTAL else "total"
    title = page_title(t("actuarial", lang), state, found.as_of, id_prefix="actuarial")
    backtest = _section(
        "actuarial_backtest_title",
        lang,
        _backtest_table(found.document["backtest"], lang),
        html.P(t("actuarial_backtest_note", lang), className="as-of-stamp"),
    )
    if state.publication:
        note = html.P(
            t("actuarial_publication_note", lang, n=wh.config.suppression_threshold - 1),
            id="actuarial-publication-note",
            className="publication-note",
        )
        shown = actuarial.nowcasts(found, wh.config.suppression_threshold)
        return [
            title,
            note,
            _controls(metric, scheme, lang),
            _section(
                "actuarial_nowcast_title",
                lang,
                _nowcast_table(list(shown.values()), metric, scheme, lang),
            ),
            backtest,
        ]
    years = found.years()
    year = int(year) if year and str(year).isdigit() and int(year) in years else years[0]
    n = found.history_months
    return [
        title,
        html.P(t("actuarial_method", lang, n=n), id="actuarial-method", className="as-of-stamp"),
        _controls(metric, scheme, lang),
        _section(
            "actuarial_nowcast_title",
            lang,
            _nowcast_table(found.document["months"], metric, scheme, lang),
        ),
        _section(
            "actuarial_triangle_title",
            lang,
            dcc.Graph(
                id="actuarial-triangle",
                figure=_triangle(found, metric, scheme, lang),
                config=graph_config(lang),
            ),
            html.P(t("actuarial_triangle_note", lang), className="as-of-stamp"),
        ),
        _section(
            "actuarial_factors_title",
            lang,
            _factors_table(actuarial.completion_factors(found, metric, scheme), lang),
            html.P(t("actuarial_factors_note", lang, n=n), className="as-of-stamp"),
        ),
        backtest,
        _budget_section(wh, found, year, years, lang),
    ]


def _section(title_key: str, lang: str, *children):
    return html.Div([html.H3(t(title_key, lang)), *children], className="section")


def _controls(metric: str, scheme: str, lang: str):
    registry = load_registry()
    return html.Div(
        [
            html.Label(t("actuarial_metric", lang), htmlFor="actuarial-metric"),
            dcc.Dropdown(
                id="actuarial-metric",
                options=[{"label": registry.metric(m).label(lang), "value": m} for m in METRICS],
                value=metric,
                clearable=False,
                style={"width": "24rem", "maxWidth": "100%"},
            ),
            html.Label(t("scheme", lang), htmlFor="actuarial-scheme"),
            dcc.Dropdown(
                id="actuarial-scheme",
                options=[{"label": scheme_label(s, lang), "value": s} for s in SCHEMES_AND_TOTAL],
                value=scheme,
                clearable=False,
                style={"width": "10rem", "maxWidth": "100%"},
            ),
        ],
        className="controls-row",
    )


def _value(metric: str, value, lang: str) -> str:
    """A figure of `metric`: euros with cents, counts (nowcasts: one decimal); a masked count
    ("<5", "x") as it is."""
    if isinstance(value, str):
        return value
    if metric == FEES:
        return fmt_eur(value, lang)
    if isinstance(value, float) and not value.is_integer():
        return fmt_number(value, lang, 1)
    return fmt_int(value, lang)


def _interval(metric: str, lower, upper, lang: str) -> str:
    if lower is None or upper is None:
        return ""
    return f"{_value(metric, lower, lang)} – {_value(metric, upper, lang)}"


def _table(table_id: str, header: list[str], rows: list[list[str]]):
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in header])),
            html.Tbody([html.Tr([html.Td(c) for c in row]) for row in rows]),
        ],
        id=table_id,
        className="figures",
    )


def _nowcast_table(months: list[dict], metric: str, scheme: str, lang: str):
    """The provisional months (rows of the nowcast document): figure known, nowcast,
    intervals, share known."""
    rows = [r for r in months if r["metric"] == metric and r["scheme"] == scheme]
    if not rows:
        return html.P(t("data_months_none", lang), id="actuarial-nowcast-none")
    header = [
        t("month", lang),
        t("actuarial_col_known", lang),
        t("actuarial_col_nowcast", lang),
        t("state_interval_80", lang),
        t("state_interval_95", lang),
        t("actuarial_col_share", lang),
    ]
    body = [
        [
            fmt_month(r["month"], lang),
            _value(metric, r["observed"], lang),
            _value(metric, r["nowcast"], lang),
            _interval(metric, r["lower_80"], r["upper_80"], lang),
            _interval(metric, r["lower_95"], r["upper_95"], lang),
            fmt_rate(r["share_known"], lang),
        ]
        for r in rows
    ]
    return _table("actuarial-nowcast", header, body)


def _triangle(found, metric: str, scheme: str, lang: str) -> go.Figure:
    """Heat map: delivery month (rows, latest at the top) x lag (columns); a cell is what the
    billing month delivery + lag added (SPEC §15), blank where that month has not come yet."""
    rows = [r for r in nowcast.triangle_rows(found.history) if r["metric"] == metric]
    rows = [r for r in rows if r["scheme"] == scheme]
    months = sorted({r["month"] for r in rows})
    # Up to the last lag that added anything (the later ones are all 0), the provisional
    # months' lags at least.
    busy = [r["lag"] for r in rows if r["cell"]]
    last = max([*busy, found.vintage() - nowcast.month_index(months[-1])], default=0) + 1
    lags = list(range(min(last, max((r["lag"] for r in rows), default=0)) + 1))
    cells = {(r["month"], r["lag"]): r["cell"] for r in rows}
    z = [[cells.get((m, k)) for k in lags] for m in months]
    text = [["" if v is None else _value(metric, v, lang) for v in line] for line in z]
    fig = go.Figure(
        go.Heatmap(
            x=lags,
            y=[fmt_month(m, lang, short=True) for m in months],
            z=z,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            hovertemplate="%{y}, " + t("actuarial_lag", lang) + " %{x}: %{text}<extra></extra>",
            colorbar={"title": {"text": ""}},
        )
    )
    fig.update_layout(
        xaxis={"title": {"text": t("actuarial_lag", lang)}, "dtick": 1, "side": "top"},
        yaxis={"title": {"text": t("actuarial_delivery_month", lang)}, "autorange": "reversed"},
    )
    figure_layout(fig, lang, height=max(300, 22 * len(months) + 120))
    fig.update_layout(margin={"l": 110})
    return fig


def _factors_table(rows: list[dict], lang: str):
    header = [
        t("actuarial_lag", lang),
        t("actuarial_col_share", lang),
        t("actuarial_col_factor", lang),
    ]
    body = [
        [
            fmt_int(r["lag"], lang),
            fmt_rate(r["share_known"], lang),
            fmt_number(r["factor"], lang, 3),
        ]
        for r in rows
    ]
    return _table("actuarial-factors", header, body)


def _backtest_table(rows: list[dict], lang: str):
    registry = load_registry()
    header = [
        t("actuarial_lag", lang),
        t("actuarial_col_metric", lang),
        t("actuarial_col_months", lang),
        t("actuarial_col_error_known", lang),
        t("actuarial_col_error_nowcast", lang),
        t("actuarial_col_cover_80", lang),
        t("actuarial_col_cover_95", lang),
        t("actuarial_col_verdict", lang),
    ]
    body = []
    for r in rows:
        known, cast = r["median_abs_pct_error_observed"], r["median_abs_pct_error_nowcast"]
        verdict = ""
        if known is not None and cast is not None:
            verdict = t(
                "actuarial_verdict_better" if cast < known else "actuarial_verdict_not_better", lang
            )
        body.append(
            [
                fmt_int(r["lag"], lang),
                registry.metric(r["metric"]).label(lang),
                fmt_int(r["months"], lang),
                _percent(known, lang),
                _percent(cast, lang),
                fmt_rate(r["coverage_80"], lang, 0),
                fmt_rate(r["coverage_95"], lang, 0),
                verdict,
            ]
        )
    return _table("actuarial-backtest", header, body)


def _percent(value, lang: str) -> str:
    """An error already in percent (12.5 -> 12,5 %)."""
    return fmt_rate(None if value is None else value / 100, lang)


# --- the budget -----------------------------------------------------------------------------


def _budget_section(wh, found, year: int, years: list[int], lang: str):
    doc = actuarial.budget(wh, found, year)
    projection = doc["projection"]
    if projection["fees_year_end_eur"] is None:
        summary = t("actuarial_budget_no_projection", lang)
    else:
        summary = t(
            "actuarial_budget_summary",
            lang,
            x=fmt_eur(projection["fees_year_end_eur"], lang),
            l80=fmt_eur(projection["lower_80"], lang),
            u80=fmt_eur(projection["upper_80"], lang),
            l95=fmt_eur(projection["lower_95"], lang),
            u95=fmt_eur(projection["upper_95"], lang),
            share=fmt_rate(projection["share_of_budget"], lang),
            budget=fmt_eur(doc["annual_budget_eur"], lang),
        )
    return html.Div(
        [
            html.H3(t("actuarial_budget_title", lang, year=year)),
            html.Div(
                [
                    html.Label(t("actuarial_year", lang), htmlFor="actuarial-year"),
                    dcc.Dropdown(
                        id="actuarial-year",
                        options=[{"label": str(y), "value": y} for y in years],
                        value=year,
                        clearable=False,
                        style={"width": "8rem", "maxWidth": "100%"},
                    ),
                ],
                className="controls-row",
            ),
            html.P(summary, id="actuarial-budget-summary"),
            dcc.Graph(
                id="actuarial-budget",
                figure=_budget_chart(doc, lang),
                config=graph_config(lang),
            ),
            html.P(t("actuarial_budget_method", lang), className="as-of-stamp"),
        ],
        className="section",
    )


def budget_lines(doc: dict) -> dict:
    """The budget chart's series from a budget document (etl.nowcast.budget_document):
    `billed` the cumulative fees booked per billing month, `delivery` the cumulative fees per
    delivery month (known, and the nowcast of the provisional ones), both up to the vintage;
    `fan` {level: [(month, lower, upper)]} from the last delivery point (zero width) to the
    year-end interval, straight lines in between."""
    months = doc["months"]
    billed = [(r["month"], r["fees_billed_cumulative_eur"]) for r in months]
    billed = [(m, v) for m, v in billed if v is not None]
    delivery, total = [], 0.0
    for r in months:
        if r["fees_nowcast_eur"] is None:
            break
        total += r["fees_nowcast_eur"]
        delivery.append((r["month"], round(total, 2)))
    projection = doc["projection"]
    fan = {}
    if projection["fees_year_end_eur"] is not None and delivery:
        last_month, last_value = delivery[-1]
        steps = nowcast.month_index(months[-1]["month"]) - nowcast.month_index(last_month)
        for level in (80, 95):
            lower, upper = projection[f"lower_{level}"], projection[f"upper_{level}"]
            centre = projection["fees_year_end_eur"]
            points = [(last_month, last_value, last_value, last_value)]
            for i in range(1, steps + 1):
                share = i / steps
                month = nowcast.month_text(nowcast.month_index(last_month) + i)
                points.append(
                    (
                        month,
                        last_value + (centre - last_value) * share,
                        last_value + (lower - last_value) * share,
                        last_value + (upper - last_value) * share,
                    )
                )
            fan[level] = points
    return {"billed": billed, "delivery": delivery, "fan": fan}


def _budget_chart(doc: dict, lang: str) -> go.Figure:
    lines = budget_lines(doc)
    fig = go.Figure()
    for level in (95, 80):
        points = lines["fan"].get(level)
        if not points:
            continue
        x = [m + "-01" for m, *_ in points]
        fig.add_scatter(
            x=x + x[::-1],
            y=[p[3] for p in points] + [p[2] for p in points][::-1],
            fill="toself",
            mode="lines",
            fillcolor=FAN[level],
            line={"width": 0},
            name=t(f"state_interval_{level}", lang),
            hoverinfo="skip",
        )
    if lines["fan"]:
        points = lines["fan"][80]
        fig.add_scatter(
            x=[m + "-01" for m, *_ in points],
            y=[p[1] for p in points],
            mode="lines",
            line={"color": DELIVERY_COLOUR, "dash": "dash"},
            name=t("actuarial_budget_projection", lang),
            customdata=[fmt_eur(p[1], lang) for p in points],
            hovertemplate="%{x|%Y-%m}: %{customdata}<extra></extra>",
        )
    for key, series, colour in (
        ("actuarial_budget_delivery", lines["delivery"], DELIVERY_COLOUR),
        ("actuarial_budget_billed", lines["billed"], BILLED_COLOUR),
    ):
        fig.add_scatter(
            x=[m + "-01" for m, _ in series],
            y=[v for _, v in series],
            mode="lines+markers",
            line={"color": colour},
            name=t(key, lang),
            customdata=[fmt_eur(v, lang) for _, v in series],
            hovertemplate="%{x|%Y-%m}: %{customdata}<extra></extra>",
        )
    fig.add_hline(
        y=doc["annual_budget_eur"],
        line_dash="dot",
        line_color=SCHEME_COLOURS["total"],
        annotation_text=t("actuarial_budget_envelope", lang),
        annotation_position="top left",
    )
    figure_layout(fig, lang, height=460)
    # Five series and the envelope's label: the legend goes under the chart, one series a line
    # (a row of five is wider than a phone's screen).
    fig.update_layout(
        xaxis={
            "type": "date",
            "dtick": "M1",
            "tickformat": "%Y-%m",
            "range": [f"{doc['year'] - 1}-12-16", f"{doc['year']}-12-16"],
        },
        legend={"orientation": "v", "y": -0.12, "yanchor": "top", "x": 0},
        margin={"t": 30, "b": 150},
    )
    # Plotly does not wrap legend text: a long series name (Dutch) is broken into lines.
    for trace in fig.data:
        if trace.name and len(trace.name) > LEGEND_LINE:
            trace.name = "<br>".join(textwrap.wrap(trace.name, LEGEND_LINE))
    return fig


# --- callbacks -------------------------------------------------------------------------------


@callback(
    Output("actuarial-page", "children"),
    Input("actuarial-poll", "n_intervals"),
    State("url", "search"),
    prevent_initial_call=True,
)
def poll(_n, search):
    """While the review is being computed: the page once it is there."""
    params = query_params(search)
    state = view_state(params)
    wh = warehouse()
    found = actuarial.review(wh, state.as_of, wait=0)
    if found is actuarial.PENDING:
        return dash.no_update
    if found is None:
        return empty_page(state, id_prefix="actuarial")
    return _content(
        wh, state, found, params.get("metric"), params.get("scheme"), params.get("year")
    )


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("actuarial-metric", "value"),
    Input("actuarial-scheme", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def choose_figure(metric, scheme, search):
    """The figure and scheme pickers write `metric` and `scheme` into the URL."""
    params = query_params(search)
    if not metric or not scheme or (params.get("metric"), params.get("scheme")) == (metric, scheme):
        return dash.no_update
    return search_with(search, metric=metric, scheme=scheme)


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("actuarial-year", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def choose_year(year, search):
    """The year picker writes `year` into the URL."""
    if not year or query_params(search).get("year") == str(year):
        return dash.no_update
    return search_with(search, year=year)
